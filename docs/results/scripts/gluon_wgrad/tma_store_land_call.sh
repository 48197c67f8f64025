#!/bin/bash
# the tree with 16-bit weight gradients stored by TMA: its GPU tests, then layer.py twice
export PYTHONPATH=$PWD
timeout -s KILL 200 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper_wgrad or hopper_down or (matches_references and dtype1) or memory_contract or deterministic or int64" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -12
for p in 1 2; do timeout -s KILL 110 python docs/results/scripts/layer.py sonic all $OUT/layer$p.json >> $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; done
grep -v Warn $OUT/layer.log
