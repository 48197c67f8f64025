#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 170 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "int64 or (fullgraph and rounding)" > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_tests.log | tail -8
