#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the wide weight-gradient tiles with their second
# block left out where it lies wholly past the edge, in three forms (.gpu/: the tree before, one / two main loops, the
# producer's copies for that block left out too or not) against the tree before (wgedge.py); then the weight
# gradients' and the layer's GPU tests with the one-loop form in place. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 400 python docs/results/scripts/wg_edge/wgedge.py $OUT/wgedge.json head=.gpu/sk_head/sonic_kernels.py \
  one=.gpu/sk_one/sonic_kernels.py two=.gpu/sk_two/sonic_kernels.py both=.gpu/sk_both/sonic_kernels.py \
  > $OUT/wgedge.log 2>&1; echo rc $? >> $OUT/wgedge.log
grep -v -i warn $OUT/wgedge.log
cp .gpu/sk_one/sonic_kernels.py sonic_kernels.py
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py \
  -k "squares or wgrad or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
