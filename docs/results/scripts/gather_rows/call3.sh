#!/bin/bash
# call1.sh's measurements on an H200 (it ran on an H100), the prefetch variants left out: on another card it stops at
# once. With .gpu/sk_head carried. Logs under $OUT.
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { nvidia-smi -L; echo "not an H200"; exit 3; }
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 100 python docs/results/scripts/gather_rows/pfab.py - $OUT/window.json > $OUT/window.log 2>&1; echo rc $? >> $OUT/window.log
grep -v -i warn $OUT/window.log
timeout -s KILL 120 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 16
timeout -s KILL 80 python docs/results/scripts/torch_gather/probe.py > $OUT/torch_gather_probe.log 2>&1; echo rc $? >> $OUT/torch_gather_probe.log
tail -n 4 $OUT/torch_gather_probe.log
echo "at $SECONDS s"
