#!/bin/bash
# From the repository root, carrying .whl/t38.tar.xz as call.sh says: call4.sh's per-kernel profile and whole layer
# again, 3.6 first this time, for a second pass of the grouped GEMM's per-branch cast under 3.8.0.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
T38="env PYTHONPATH=/tmp/t38:$PWD"
S=32768x4096:256/256/16,32768x4096:2048/64/4
for t in t36 t38; do
  run=$([ $t = t38 ] && echo "$T38" || echo env)
  $run timeout -s KILL 100 python bench.py --mode=kernels --backends=sonic --kernels_top=6 --shapes=$S --out_dir=/tmp/k_$t \
    > $OUT/kernels2_$t.log 2>&1; echo rc $? >> $OUT/kernels2_$t.log
done
for t in t36 t38; do
  run=$([ $t = t38 ] && echo "$T38" || echo env)
  $run timeout -s KILL 100 python docs/results/scripts/layer.py $t all $OUT/layer2_$t.json > $OUT/layer2_$t.txt 2>&1
  echo rc $? >> $OUT/layer2_$t.txt
done
for f in $OUT/kernels2_*.log; do echo "== $f"; grep -E "^_|^32768|^rc" $f; done
for f in $OUT/layer2_*.txt; do echo "== $f"; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $f | tail -5; done
rm $OUT/*.txt
