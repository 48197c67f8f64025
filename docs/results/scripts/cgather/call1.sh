#!/bin/bash
# From the repository root on one H200 (or the H100 lent for it), torch 2.11 + Triton 3.6, with .gpu/sk_head carried
# (the last commit's sonic_kernels.py): the up-projection and dA' with each consumer gathering its own rows by
# cp.async, the producer loading the weights alone, against the last commit's kernels (up_wide/upab.py and
# db_timeline/dbab.py: bit for bit, timed in alternating rounds beside cuBLAS), then their GPU tests and the
# layer's. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> $OUT/env.log 2>&1
cat $OUT/env.log
timeout -s KILL 150 python -m pytest -q -n 8 --timeout=140 -p no:cacheprovider tests/test_sonic.py \
  -k "hopper_up or hopper_down_bwd or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
timeout -s KILL 170 python docs/results/scripts/up_wide/upab.py .gpu/sk_head/sonic_kernels.py $OUT/upab.json \
  > $OUT/upab.log 2>&1; echo rc $? >> $OUT/upab.log
grep -E "bit for bit|TFLOPS|^rc" $OUT/upab.log
timeout -s KILL 200 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json \
  > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
