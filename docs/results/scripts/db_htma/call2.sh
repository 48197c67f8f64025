#!/bin/bash
# From the repository root on one H200, with .gpu/sk_head carried: dbab.py again (three more rounds, five shapes),
# then the README's kernels-mode command twice (each expert GEMM beside cuBLAS in the same passes). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 240 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
for p in 1 2; do
  timeout -s KILL 170 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/p$p > $OUT/kernels_p$p.log 2>&1; echo rc $? >> $OUT/kernels_p$p.log
  grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels_p$p.log
done
