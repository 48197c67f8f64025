#!/bin/bash
# dA''s epilogue on 8 warps (two warpgroups) instead of 4, at 256-column items (registers 176 / 48 / 24) and at
# 128-column items (144 / 72 / 40): the tree at c754a0f with epi_warps.patch.txt applied (its configs' EPI_WARPS),
# against c754a0f's module (.gpu/sk_tip/sonic_kernels.py, carried): eq.py (bit for bit against 4 warps, relative
# error against float64), then dbab.py at five shapes. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 120 python docs/results/scripts/epi_warps/eq.py > $OUT/eq.log 2>&1; echo rc $? >> $OUT/eq.log
grep -v -i warn $OUT/eq.log | tail -n 6
timeout -s KILL 400 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_tip/sonic_kernels.py $OUT/dbab.json \
  w8=EPI_WARPS:8,EPILOGUE_REGS:48,PRODUCER_REGS:24 \
  n4=BLOCK_N:128,STAGES:4,ACC16:0,CONSUMER_REGS:144,EPILOGUE_REGS:152,PRODUCER_REGS:72 \
  n8=BLOCK_N:128,STAGES:4,ACC16:0,CONSUMER_REGS:144,EPILOGUE_REGS:72,PRODUCER_REGS:40,EPI_WARPS:8 \
  > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 32
echo "at $SECONDS s"
