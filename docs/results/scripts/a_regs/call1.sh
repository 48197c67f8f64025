#!/bin/bash
# The gathered rows as the A operand from registers (A_REGS) in dA' and the up-projection, against the tree's
# kernels: bit for bit and timed. Logs under $OUT.
# It ran on eff1b70 with probe.patch.txt applied (patch -p1): the key A_REGS is the probe's, not the tree's.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
SPLIT=CONSUMER_REGS:176,EPILOGUE_REGS:120,PRODUCER_REGS:40
timeout -s KILL 200 python docs/results/scripts/db_timeline/dbab.py sonic_kernels.py $OUT/dbab.json \
  split=$SPLIT rs=A_REGS:1,$SPLIT > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 22
timeout -s KILL 150 python docs/results/scripts/a_regs/upab.py $OUT/upab.json rs=A_REGS:1 > $OUT/upab.log 2>&1
echo rc $? >> $OUT/upab.log
grep -v -i warn $OUT/upab.log | tail -n 14
echo "at $SECONDS s"
