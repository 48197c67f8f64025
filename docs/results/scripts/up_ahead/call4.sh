#!/bin/bash
# call1.sh's two rings with W1's the deeper one (the probe's ROW_STAGES below STAGES: W1's blocks run ahead of the
# rows; up_ahead_w.patch.txt, applied to b22efa4's sonic_kernels.py): W1 5 / rows 2, W1 4 / rows 3, against the
# tree's kernel, the two rings at 4 / 4, and rows 6 / W1 3 again; bit for bit and timed by ../a_regs/upab.py. Logs under
# $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 300 python docs/results/scripts/a_regs/upab.py $OUT/upab.json sep44=ROW_STAGES:4 \
  w5r2=ROW_STAGES:2,STAGES:5 w4r3=ROW_STAGES:3,STAGES:4 r6w3=ROW_STAGES:6,STAGES:3 > $OUT/upab.log 2>&1
echo rc $? >> $OUT/upab.log
grep -v -i warn $OUT/upab.log | tail -n 26
echo "at $SECONDS s"
