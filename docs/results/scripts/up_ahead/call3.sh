#!/bin/bash
# The up-projection with lines of a later step prefetched into L2 by each producer thread's prefetch.global.L2 (the
# LSU's path; the probe's L_PF, in the working tree's sonic_kernels.py at the time; the patch is line_prefetch.patch.txt):
# 1 W1's gate and up blocks 4 steps on, 2 the gathered rows of X 4 steps on, 3 both; against the tree's kernel, bit
# for bit and timed by ../a_regs/upab.py. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 400 python docs/results/scripts/a_regs/upab.py $OUT/upab.json w=L_PF:1 x=L_PF:2 wx=L_PF:3 \
  > $OUT/upab.log 2>&1
echo rc $? >> $OUT/upab.log
grep -v -i warn $OUT/upab.log | tail -n 22
echo "at $SECONDS s"
