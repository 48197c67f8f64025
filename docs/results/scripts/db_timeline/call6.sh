#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): dA' with 8 and 2 producer warps against the
# tree's 4 (pwarps.py). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 300 python docs/results/scripts/db_timeline/pwarps.py $OUT/pwarps.json > $OUT/pwarps.log 2>&1; echo rc $? >> $OUT/pwarps.log
grep -v -i warn $OUT/pwarps.log
