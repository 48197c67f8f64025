#!/bin/bash
# From the repository root on one H200, carrying .whl/t39.tar.xz as call.sh says. As call.sh, with dA''s 256-column
# items at the registers DB_WIDE_CONFIG now takes under 3.9 (160 / 152 / 40): the whole layer at the README's four
# shapes under 3.9 and 3.6, in the order 3.9, 3.6, 3.9, 3.6. The kernel cache sits in out_tcache/ (ignored by git).
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
mkdir -p /tmp/t39 && tar -xJf .whl/t39.tar.xz -C /tmp/t39
T39="env TRITON_BACKENDS_IN_TREE=1 PYTHONPATH=/tmp/t39:$PWD"
$T39 python -c "import triton, torch, sonic_kernels as sk; print(triton.__version__, triton.__file__, torch.__version__, sk.DB_WIDE_CONFIG)" > $OUT/env_t39.txt 2>&1
cat $OUT/env_t39.txt
for pass in 1 2; do
  lim=$((pass == 1 ? 170 : 120))   # the first pass of 3.9 compiles its kernels
  $T39 timeout -s KILL $lim python docs/results/scripts/layer.py t39 all $OUT/layer_t39_$pass.json > $OUT/t39_$pass.txt 2>&1
  echo rc $? >> $OUT/t39_$pass.txt
  timeout -s KILL 120 python docs/results/scripts/layer.py t36 all $OUT/layer_t36_$pass.json > $OUT/t36_$pass.txt 2>&1
  echo rc $? >> $OUT/t36_$pass.txt
done
for f in $OUT/t3*_?.txt; do echo "== $f"; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $f | tail -6; done
rm $OUT/t3*_?.txt   # the device call returns eight files at most; the tables are in the call's output
