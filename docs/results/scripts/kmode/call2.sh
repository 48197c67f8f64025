#!/bin/bash
# bench.py's kernels mode with the dense GEMMs timed in the layer's passes (the tree's), then the last commit's (cuBLAS
# by do_bench apart; carried in .gpu/bench_head), at the README's four shapes; then test_bench's kernels tests.
# Runs from the repository root on the H200; logs to $OUT.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/call2.log 2>&1
timeout -s KILL 240 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/new > $OUT/kernels_new.log 2>&1
echo "rc $?" >> $OUT/kernels_new.log
timeout -s KILL 150 python .gpu/bench_head/bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/head > $OUT/kernels_head.log 2>&1
echo "rc $?" >> $OUT/kernels_head.log
timeout -s KILL 120 python -m pytest -q tests/test_bench.py -k "kernels or expert_gemms" >> $OUT/call2.log 2>&1
echo "rc $?" >> $OUT/call2.log
