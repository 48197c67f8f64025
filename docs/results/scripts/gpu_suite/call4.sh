#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6, the image's): test_sonic.py alone with 8
# xdist workers, the file call3.sh leaves out. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt 2>&1
start=$SECONDS
timeout ${1:-140} python -m pytest -q -n 8 -p no:cacheprovider -rs tests/test_sonic.py > $OUT/suite.log 2>&1
echo rc $? >> $OUT/suite.log
echo "wall $((SECONDS - start)) s" >> $OUT/suite.log
cat $OUT/gpu.txt; grep -E "passed|failed|error" $OUT/suite.log | tail -3; tail -2 $OUT/suite.log
