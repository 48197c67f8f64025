#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the up-projection's epilogue paced over the
# second consumer's half (uppace.py) at h200_moe, 1.4B and 7B. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 400 python docs/results/scripts/up_pace/uppace.py $OUT/uppace.json 100,200,400 h200_moe 1.4B 7B \
  > $OUT/uppace.log 2>&1; echo rc $? >> $OUT/uppace.log
grep -v -i warn $OUT/uppace.log
