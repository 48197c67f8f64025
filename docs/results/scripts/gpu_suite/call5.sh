#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6, the image's): test_sonic.py alone with 8
# xdist workers as call4.sh, but each test named as it ends (-v) and the 15 slowest timed, so a test still running
# at the limit is known: the collected names less the ended ones. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt 2>&1
python -m pytest -q --collect-only -p no:cacheprovider tests/test_sonic.py 2>/dev/null | grep '::' > $OUT/collected.txt
start=$SECONDS
timeout ${1:-400} python -m pytest -v -n 8 -p no:cacheprovider -rs --durations=15 tests/test_sonic.py > $OUT/suite.log 2>&1
echo rc $? >> $OUT/suite.log
echo "wall $((SECONDS - start)) s" >> $OUT/suite.log
grep -oE 'tests/test_sonic.py::[^ ]+' $OUT/suite.log | sort -u > $OUT/ended.txt
sort -u $OUT/collected.txt | comm -23 - $OUT/ended.txt > $OUT/not_ended.txt
cat $OUT/gpu.txt; grep -E "passed|failed|error" $OUT/suite.log | tail -3; tail -2 $OUT/suite.log
echo "not ended:"; cat $OUT/not_ended.txt; grep -A16 "slowest 15" $OUT/suite.log
