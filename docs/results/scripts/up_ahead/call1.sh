#!/bin/bash
# The up-projection with the gathered rows' ring apart from W1's and running ahead of it (the probe's ROW_STAGES, in
# the working tree's sonic_kernels.py at the time; the patch is up_ahead.patch.txt), against the shared ring: bit for
# bit and timed by ../a_regs/upab.py. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 400 python docs/results/scripts/a_regs/upab.py $OUT/upab.json sep44=ROW_STAGES:4 \
  r6w3=ROW_STAGES:6,STAGES:3 r8w2=ROW_STAGES:8,STAGES:2 r5w3=ROW_STAGES:5,STAGES:3 > $OUT/upab.log 2>&1
echo rc $? >> $OUT/upab.log
grep -v -i warn $OUT/upab.log | tail -n 26
echo "at $SECONDS s"
