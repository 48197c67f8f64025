#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6, the image's): every test file but
# test_sonic.py (whose GPU tests ran in their own call) with 16 xdist workers, and the slowest tests named, since
# the whole suite with 8 workers outlasts one device call on an H100. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
start=$SECONDS
timeout ${1:-480} python -m pytest -q -n 16 --timeout=460 -p no:cacheprovider -rs --durations=25 \
  --ignore=tests/test_sonic.py tests > $OUT/suite.log 2>&1
echo rc $? >> $OUT/suite.log
echo "wall $((SECONDS - start)) s" >> $OUT/suite.log
grep -E "passed|failed|error" $OUT/suite.log | tail -3; tail -2 $OUT/suite.log
