#!/bin/bash
# The producers of the gathering Hopper kernels issuing a stage's cp.async copies of the gathered rows before its TMA
# loads (copy_order.patch.txt on c754a0f's sonic_kernels.py: the slower, DRAM-bound copies start first), against
# c754a0f's module (.gpu/sk_tip/sonic_kernels.py, carried): one_ready/kab.py at five shapes, then the GPU tests of
# those kernels. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 330 python docs/results/scripts/one_ready/kab.py .gpu/sk_tip/sonic_kernels.py $OUT/kab.json \
  > $OUT/kab.log 2>&1; echo rc $? >> $OUT/kab.log
grep -v -i warn $OUT/kab.log | tail -n 22
timeout -s KILL 200 python -m pytest -q -n 8 --timeout=180 -p no:cacheprovider tests/test_sonic.py \
  -k "hopper or wgrad or down_bwd or up_swiglu or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -n 3 $OUT/tests.log
echo "at $SECONDS s"
