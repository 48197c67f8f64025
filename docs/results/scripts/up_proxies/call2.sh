#!/bin/bash
# The up-projection's hand-over proxies (uphand.py) at the README's four shapes. From the repository root on the H200;
# logs to $OUT.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/call2.log 2>&1
timeout -s KILL 420 python docs/results/scripts/up_proxies/uphand.py $OUT/uphand.json 1.4B 7B 30B 120B >> $OUT/call2.log 2>&1
echo "rc $?" >> $OUT/call2.log
