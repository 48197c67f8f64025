#!/bin/bash
# From the repository root: the up-projection's config probe; the GPU tests of the Hopper kernels and the
# layer; layer.py once. About 6 minutes on a fresh machine
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/up_configs/up_probe.py $OUT/up_probe.json > $OUT/up_probe.log 2>&1
echo "rc $?" >> $OUT/up_probe.log; grep -v Warn $OUT/up_probe.log | grep -v " triton \|warn"
timeout -s KILL 200 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "grouped_mm or hopper or (matches_references and dtype1) or fp32_master or memory_contract" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -8
timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; grep -h sonic $OUT/layer.log
