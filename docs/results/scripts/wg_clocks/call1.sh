#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' dW1 at 7B and 30B in bf16,
# fp32 and fp32 with squares, and cuBLAS's bmm, each beside the SM clock and power (wgclocks.py). Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python docs/results/scripts/wg_clocks/wgclocks.py $OUT/wgclocks.json > $OUT/wgclocks.log 2>&1
echo rc $? >> $OUT/wgclocks.log
grep -v -i warn $OUT/wgclocks.log
