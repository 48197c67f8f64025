#!/bin/bash
# Prepared, not run yet: gapab.py on whatever card the device lends (say which in the LOG). One log and one JSON
# under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gapab.log
timeout -s KILL 500 python docs/results/scripts/kmode_gap/gapab.py $OUT/gapab.json >> $OUT/gapab.log 2>&1
echo rc $? >> $OUT/gapab.log
grep -v -i warn $OUT/gapab.log
