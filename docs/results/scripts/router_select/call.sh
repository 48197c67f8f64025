#!/bin/bash
# From the repository root of branch try/router-rounds, with .gpu/old_sk/sonic_kernels.py a copy of the tree
# before it (carried: `mkdir -p .gpu/old_sk && git show main:sonic_kernels.py > .gpu/old_sk/sonic_kernels.py`):
# the router probe, the router's GPU tests, layer.py once. About 5 minutes on a fresh machine
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/router_select/router_probe.py .gpu/old_sk $OUT/router_probe.json > $OUT/router_probe.log 2>&1
echo "rc $?" >> $OUT/router_probe.log; grep -v "Warn\|warn" $OUT/router_probe.log
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_router.py tests/test_sonic.py -k "router or ties or matches_references" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -8
timeout -s KILL 150 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; grep -h sonic $OUT/layer.log
