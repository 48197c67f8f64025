#!/bin/bash
# From the repository root on one H200: the up-projection with its epilogue's stores predicated off (upnost.py).
# Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 300 python docs/results/scripts/up_wide/upnost.py $OUT/upnost.json > $OUT/upnost.log 2>&1; echo rc $? >> $OUT/upnost.log
grep -v -i warn $OUT/upnost.log
