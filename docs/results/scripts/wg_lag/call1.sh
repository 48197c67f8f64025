#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients with consumer 1 started one or
# two steps after consumer 0 (so that the two do not store their tiles at the same moment), and with 32-row steps in
# 8 stages for the fp32 gradients, against the tree (wg_edge/wgedge.py); then, with the one-step lag in place, the weight
# gradients' and the layer's GPU tests. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 330 python $S/wg_edge/wgedge.py $OUT/wglag.json head=.gpu/sk_head/sonic_kernels.py \
  lag1=.gpu/sk_lag1/sonic_kernels.py lag2=.gpu/sk_lag2/sonic_kernels.py lag2k32=.gpu/sk_lag2k32/sonic_kernels.py \
  k32x8=.gpu/sk_k32x8/sonic_kernels.py > $OUT/wglag.log 2>&1; echo rc $? >> $OUT/wglag.log
grep -v -i warn $OUT/wglag.log
cp .gpu/sk_lag1/sonic_kernels.py sonic_kernels.py
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py \
  -k "squares or wgrad or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
