#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6). dbtl.py: clock stamps at fixed points of every
# item in the Hopper dA' kernel's four partitions, at the README's four shapes. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv > $OUT/gpu.txt
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout -s KILL 400 python docs/results/scripts/db_timeline/dbtl.py $OUT/dbtl.json > $OUT/dbtl.log 2>&1; echo rc $? >> $OUT/dbtl.log
cat $OUT/gpu.txt; grep -v -i warn $OUT/dbtl.log | tail -80
