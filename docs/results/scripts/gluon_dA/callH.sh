#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/gluon_dA/db_probe.py $OUT/db_probe.json > $OUT/db_probe.log 2>&1
echo "rc $?" >> $OUT/db_probe.log; cat $OUT/db_probe.log | grep -v Warn
T=tests/test_sonic.py
timeout -s KILL 250 python -m pytest -v -p no:cacheprovider $T tests/test_bench.py::test_kernels -k "int64 or deterministic or (fullgraph and rounding) or test_kernels" > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_tests.log | tail -20
