#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' fp32 gradients (training's)
# stored by TMA from one buffer the two consumers fill in turn, by a fourth (store) warpgroup, in 32-row steps of 4
# stages, against the tree's stores from registers (wg_edge/wgedge.py; its bf16 rows are the control: that path is
# unchanged); then, with it in place, the weight gradients' and the layer's GPU tests. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python $S/wg_edge/wgedge.py $OUT/wgstore.json head=.gpu/sk_head/sonic_kernels.py \
  store=.gpu/sk_store/sonic_kernels.py > $OUT/wgstore.log 2>&1; echo rc $? >> $OUT/wgstore.log
grep -v -i warn $OUT/wgstore.log
cp .gpu/sk_store/sonic_kernels.py sonic_kernels.py
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py \
  -k "(squares or wgrad or layer) and not config_choice" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
