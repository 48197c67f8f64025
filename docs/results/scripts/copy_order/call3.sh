#!/bin/bash
# dA''s ring stages freed in two parts (rows_early.patch.txt on c754a0f's sonic_kernels.py, which includes
# copy_order.patch.txt): each consumer arrives on a second empty barrier once its rows of dO are in registers, and the
# producer refills the rows on it, W2's blocks after the MMAs as before. Against c754a0f with copy_order.patch.txt
# alone (.gpu/sk_co/sonic_kernels.py, carried): one_ready/kab.py at five shapes (dA' differs; the up-projection and
# the weight gradients are the same code), then the GPU tests of the kernels. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 330 python docs/results/scripts/one_ready/kab.py .gpu/sk_co/sonic_kernels.py $OUT/kab.json \
  > $OUT/kab.log 2>&1; echo rc $? >> $OUT/kab.log
grep -v -i warn $OUT/kab.log | grep "dA'\|rc"
timeout -s KILL 200 python -m pytest -q -n 8 --timeout=180 -p no:cacheprovider tests/test_sonic.py \
  -k "hopper or wgrad or down_bwd or up_swiglu or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -n 3 $OUT/tests.log
echo "at $SECONDS s"
