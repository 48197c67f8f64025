#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' time against their grid's
# rounds (wgtail.py) at 1.4B, 7B and 30B. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 400 python docs/results/scripts/wg_tail/wgtail.py $OUT/wgtail.json 1.4B 7B 30B > $OUT/wgtail.log 2>&1
echo rc $? >> $OUT/wgtail.log
grep -v -i warn $OUT/wgtail.log
