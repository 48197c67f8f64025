#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6), with .gpu/sk_head/sonic_kernels.py carried (the
# tree before) and ahead.patch.txt applied to sonic_kernels.py (since reverted): the Hopper kernels reading their next
# item's metadata an item ahead against the tree before (abkern.py); then the Hopper kernels' and the layer's GPU
# tests with the patch in place. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 330 python docs/results/scripts/prefetch/abkern.py $OUT/abkern.json head=.gpu/sk_head/sonic_kernels.py \
  ahead=sonic_kernels.py > $OUT/abkern.log 2>&1; echo rc $? >> $OUT/abkern.log
grep -v -i warn $OUT/abkern.log
timeout -s KILL 170 python -m pytest -q -n 8 --timeout=160 -p no:cacheprovider tests/test_sonic.py \
  -k "hopper or squares or wgrad or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
grep -E "FAILED|ERROR" $OUT/tests.log | head; tail -2 $OUT/tests.log
