#!/bin/bash
# the TMA-store weight gradients' probe (.gpu/wg/: branch try/wgrad-tma-store's sonic_kernels.py); then on
# the tree: the GPU tests (the expert order kernel, dS indexed by int32) and layer.py once
export PYTHONPATH=$PWD
PYTHONPATH=$PWD/.gpu/wg:$PWD timeout -s KILL 200 python .gpu/wg/tma_store_probe.py $OUT/tma_store_probe.json > $OUT/tma_store_probe.log 2>&1
echo "rc $?" >> $OUT/tma_store_probe.log; grep -v Warn $OUT/tma_store_probe.log
timeout -s KILL 230 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper or expert_order or (matches_references and dtype1) or no_host_sync or (fullgraph and topk) or deterministic or memory_contract" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -12
timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; grep -v Warn $OUT/layer.log
