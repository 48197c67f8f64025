#!/bin/bash
# From the repository root on one H200: dA' with h read by the producer instead of the epilogue, by proxy (hcopy.py).
# Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 480 python docs/results/scripts/db_hcopy/hcopy.py $OUT/hcopy.json 160/160/32 > $OUT/hcopy.log 2>&1; echo rc $? >> $OUT/hcopy.log
grep -v -i warn $OUT/hcopy.log
