#!/bin/bash
# From the repository root on one H200, carrying .whl/t38.tar.xz as call.sh says. Which kernels run slower under 3.8.0
# at d = 4096 (call2.sh: the layer 3-7% slower than under 3.6 there): bench.py's per-kernel profile at 30B and 120B
# 2048/64/4, under 3.8.0 and then 3.6, each kernel beside cuBLAS in the same pass.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
S=32768x4096:256/256/16,32768x4096:2048/64/4
PYTHONPATH=/tmp/t38:$PWD timeout -s KILL 220 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S \
  --out_dir=$OUT/t38 > $OUT/kernels_t38.log 2>&1; echo rc $? >> $OUT/kernels_t38.log
timeout -s KILL 200 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/t36 \
  > $OUT/kernels_t36.log 2>&1; echo rc $? >> $OUT/kernels_t36.log
for f in $OUT/kernels_t3?.log; do echo "== $f"; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $f | tail -40; done
