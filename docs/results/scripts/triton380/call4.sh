#!/bin/bash
# From the repository root on one H200 (it ran on an H100, 2026-12-05: cast_fix/). Carrying .whl/t38.tar.xz as
# call.sh says: the grouped GEMM with acc cast in each of its epilogue's branches (under 3.8 ptxas had run its main
# loop's wgmmas one at a time: call3.sh). Its tests under 3.8.0 and 3.6, bench.py's per-kernel profile at 30B and 120B
# 2048/64/4 under both, then, while the call has time left, one pass of the whole layer at the README's four shapes
# under both.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
T38="env PYTHONPATH=/tmp/t38:$PWD"
S=32768x4096:256/256/16,32768x4096:2048/64/4
for t in t38 t36; do
  run=$([ $t = t38 ] && echo "$T38" || echo env)
  $run timeout -s KILL 120 python -m pytest -q -p no:warnings -p no:cacheprovider tests/test_sonic.py -k "hopper_grouped_mm" \
    > $OUT/tests_$t.txt 2>&1; echo rc $? >> $OUT/tests_$t.txt
done
for t in t38 t36; do
  run=$([ $t = t38 ] && echo "$T38" || echo env)
  $run timeout -s KILL 100 python bench.py --mode=kernels --backends=sonic --kernels_top=6 --shapes=$S --out_dir=/tmp/k_$t \
    > $OUT/kernels_$t.log 2>&1; echo rc $? >> $OUT/kernels_$t.log
done
for t in t38 t36; do
  run=$([ $t = t38 ] && echo "$T38" || echo env)
  [ $SECONDS -lt 270 ] || break
  $run timeout -s KILL 100 python docs/results/scripts/layer.py $t all $OUT/layer_$t.json > $OUT/layer_$t.txt 2>&1
  echo rc $? >> $OUT/layer_$t.txt
done
for f in $OUT/tests_*.txt; do echo "== $f"; grep -E "passed|failed|rc " $f | tail -3; done
for f in $OUT/kernels_*.log; do echo "== $f"; grep -E "^_|^32768|^rc" $f; done
for f in $OUT/layer_*.txt; do echo "== $f"; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $f | tail -5; done
rm $OUT/*.txt   # the device call returns eight files at most; the tests' and tables' lines are in the call's output
