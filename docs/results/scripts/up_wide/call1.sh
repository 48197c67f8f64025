#!/bin/bash
# The up-projection's MMA form by proxy (upwide.py): checks at two small shapes, then the four shapes timed with the
# clock sampled. Runs from the repository root on the H200; logs to $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/up_wide
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/call1.log 2>&1
timeout -s KILL 420 python docs/results/scripts/up_wide/upwide.py $OUT/upwide.json 120B 30B 7B 1.4B >> $OUT/call1.log 2>&1
echo "rc $?" >> $OUT/call1.log
