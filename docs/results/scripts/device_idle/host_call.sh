#!/bin/bash
# From the repository root on one H200: the host's time to enqueue h200_moe's step (host_step.py). Logs to $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 240 python docs/results/scripts/device_idle/host_step.py > $OUT/host_step.log 2>&1; echo "rc $?" >> $OUT/host_step.log
grep -v -i warn $OUT/host_step.log | head -60
