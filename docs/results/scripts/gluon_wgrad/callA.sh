#!/bin/bash
# the Hopper weight gradients in the tree: GPU tests, then the whole layer with them and without (SK_HOPPER_WGRAD=0)
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
T=tests/test_sonic.py
timeout -s KILL 200 python -m pytest -v -p no:cacheprovider $T -k "hopper or int64 or (matches_references and dtype1) or fp32_master or deterministic or memory_contract or no_host_sync or fullgraph" > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_tests.log | tail -40
L=docs/results/scripts/layer.py
timeout -s KILL 110 python $L ws all $OUT/layer_ws1.json > $OUT/layer.log 2>&1
SK_HOPPER_WGRAD=0 timeout -s KILL 110 python $L tri all $OUT/layer_tri.json >> $OUT/layer.log 2>&1
timeout -s KILL 110 python $L ws all $OUT/layer_ws2.json >> $OUT/layer.log 2>&1
echo "rc $?" >> $OUT/layer.log; cat $OUT/layer.log | grep -v Warn
