#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6, the image's): the whole test suite in one run, the
# README's test command with pytest-xdist's 8 workers (serially it would outlast one device call). Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton, numpy; print(torch.__version__, triton.__version__, numpy.__version__)" > $OUT/versions.txt 2>&1
start=$SECONDS
timeout 565 python -m pytest -q -n 8 --timeout=540 -p no:cacheprovider -rs tests > $OUT/suite.log 2>&1
echo rc $? >> $OUT/suite.log
echo "wall $((SECONDS - start)) s" >> $OUT/suite.log
cat $OUT/versions.txt; grep -E "passed|failed|error" $OUT/suite.log | tail -3; grep -c "^SKIPPED" $OUT/suite.log; tail -2 $OUT/suite.log
