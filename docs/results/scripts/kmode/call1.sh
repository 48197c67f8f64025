#!/bin/bash
# bench.py's kernels-mode timing beside interleaved, long and isolated timings (kmode.py), the four README shapes.
# Runs from the repository root on the H200; logs to $OUT.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/call1.log 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/call1.log 2>&1
timeout -s KILL 500 python docs/results/scripts/kmode/kmode.py $OUT/kmode.json 1.4B 7B 30B 120B >> $OUT/call1.log 2>&1
echo "rc $?" >> $OUT/call1.log
