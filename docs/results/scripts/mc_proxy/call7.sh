#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6). clocks.py: the SM clock and power beside the
# up-projection with whole and half weight bytes and cuBLAS at 120B 2048/64/4. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/mc_proxy
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv > $OUT/gpu.txt 2>&1; cat $OUT/gpu.txt
timeout -s KILL 200 python docs/results/scripts/mc_proxy/clocks.py $OUT/clocks.json > $OUT/clocks.log 2>&1; echo rc $? >> $OUT/clocks.log
grep -v -i warn $OUT/clocks.log | tail -14
