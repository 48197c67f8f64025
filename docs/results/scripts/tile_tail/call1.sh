#!/bin/bash
# balanced.py at five shapes on the tree: the up-projection and dA' under random and balanced routing (RELABEL=1:
# its experts relabelled at random). Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 300 python docs/results/scripts/tile_tail/balanced.py $OUT/balanced${RELABEL:+_relabel}.json > $OUT/balanced.log 2>&1
echo rc $? >> $OUT/balanced.log
grep -v -i warn $OUT/balanced.log | tail -n 12
echo "at $SECONDS s"
