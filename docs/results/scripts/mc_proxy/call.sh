#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6). Logs under $OUT.
# 1. halfw.py: the up-projection and dA' with half of each stage's weight bytes (a proxy for W shared over a 2-CTA
#    cluster), against the kernels as they are, at 30B, 120B 2048/64/4 and 7B.
# 2. bench.py --mode=kernels at the README's four shapes: every expert GEMM beside cuBLAS, and which kernels ran
#    (the Hopper gates now ask rows of 16 elements of their cp.async operands).
# 3. layer.py sonic all: the whole layer at the README's four shapes.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 200 python docs/results/scripts/mc_proxy/halfw.py $OUT/halfw.json > $OUT/halfw.log 2>&1; echo rc $? >> $OUT/halfw.log
grep -v -i warn $OUT/halfw.log | tail -45
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep -E "hopper|x[0-9]+ [0-9]+/|rc " $OUT/kernels.log | tail -30
timeout -s KILL 160 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo rc $? >> $OUT/layer.log
grep -v -i warn $OUT/layer.log | tail -12
