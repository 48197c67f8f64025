#!/bin/bash
# From the root of a checkout of branch try/grouped-gluon (which holds try/wgrad-fp32-split too): both
# probes, then the GPU tests of both kernels. About 7 minutes on a fresh machine
export PYTHONPATH=$PWD
timeout -s KILL 150 python docs/results/scripts/gluon_wgrad/split_store_probe.py $OUT/split_store_probe.json > $OUT/split_store_probe.log 2>&1
echo "rc $?" >> $OUT/split_store_probe.log; grep -v Warn $OUT/split_store_probe.log | grep -v " triton " | grep -E "check|round 0|rc "
timeout -s KILL 120 python docs/results/scripts/gluon_grouped/grouped_probe.py $OUT/grouped_probe.json > $OUT/grouped_probe.log 2>&1
echo "rc $?" >> $OUT/grouped_probe.log; grep -v Warn $OUT/grouped_probe.log
timeout -s KILL 200 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "grouped_mm or hopper_wgrad or (matches_references and dtype1) or fp32_master or memory_contract" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -8
