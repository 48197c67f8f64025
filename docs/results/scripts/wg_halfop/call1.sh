#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients with half their TMA operand's
# bytes or without their second gathered block, by proxy, beside the tree's and cuBLAS's, with the SM clock (wghalf.py).
# Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 420 python docs/results/scripts/wg_halfop/wghalf.py $OUT/wghalf.json > $OUT/wghalf.log 2>&1
echo rc $? >> $OUT/wghalf.log
grep -v -i warn $OUT/wghalf.log
