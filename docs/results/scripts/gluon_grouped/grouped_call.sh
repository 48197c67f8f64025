#!/bin/bash
# From the repository root: the probe, the grouped GEMM's GPU tests, then
# layer.py once
export PYTHONPATH=$PWD
timeout -s KILL 180 python docs/results/scripts/gluon_grouped/grouped_probe.py $OUT/grouped_probe.json > $OUT/grouped_probe.log 2>&1
echo "rc $?" >> $OUT/grouped_probe.log; grep -v Warn $OUT/grouped_probe.log
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "grouped_mm or (matches_references and dtype1) or memory_contract" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -8
timeout -s KILL 110 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; grep -v Warn $OUT/layer.log
