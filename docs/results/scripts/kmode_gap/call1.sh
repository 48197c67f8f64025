#!/bin/bash
# gapab.py on whatever card the device lends (the LOG says which), then a_regs/call6.sh at 7B. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gapab.log
timeout -s KILL 300 python docs/results/scripts/kmode_gap/gapab.py $OUT/gapab.json >> $OUT/gapab.log 2>&1
echo rc $? >> $OUT/gapab.log
grep -v -i warn $OUT/gapab.log
SHAPES=7B bash docs/results/scripts/a_regs/call6.sh
echo "at $SECONDS s"
