#!/bin/bash
# call 1: the persistent dA' kernel (.gpu/sk_try.py, branch try/persistent-dA) against main's; the weight-gradient configs;
# then the dA' GPU tests on the branch's code
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv > $OUT/env.txt
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.txt 2>&1
timeout -s KILL 200 python docs/results/scripts/persist_dA_probe_main.py 1.4B,7B,30B,120B $OUT/dA_probe.json > $OUT/dA_probe.log 2>&1
echo "rc $?" >> $OUT/dA_probe.log; cat $OUT/dA_probe.log
timeout -s KILL 230 python docs/results/scripts/gluon_wgrad/wgrad_configs.py 1.4B,7B,30B,120B $OUT/wgrad_configs.json > $OUT/wgrad_configs.log 2>&1
echo "rc $?" >> $OUT/wgrad_configs.log; cat $OUT/wgrad_configs.log
cd .gpu/try
T=tests/test_sonic.py
PYTHONPATH=$PWD:$PWD/../.. timeout -s KILL 140 python -m pytest -v -p no:cacheprovider "$T::test_down_bwd_kernel_variants" "$T::test_int64_offsets" \
  "$T::test_sonic_matches_references[dtype1-0.01-1000-256-128-16-4]" "$T::test_deterministic" > $OUT/gpu_tests_try.log 2>&1
echo "rc $?" >> $OUT/gpu_tests_try.log; grep -E "PASSED|FAILED|rc |Error" $OUT/gpu_tests_try.log | head -30
