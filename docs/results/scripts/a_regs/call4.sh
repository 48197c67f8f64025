#!/bin/bash
# call2.sh's comparison on an H200 (on any other card it stops at once); ANY_CARD=1 runs it on any: dA' before and after the change, bit for bit
# and timed (.gpu/sk_tip carried); three passes of the README's kernels-mode command; two of layer.py. Logs under $OUT.
[ -n "$ANY_CARD" ] || nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { nvidia-smi -L; echo "not an H200"; exit 3; }
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 150 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_tip/sonic_kernels.py $OUT/dbab.json \
  > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 16
for p in 1 2 3; do
  timeout -s KILL 100 python bench.py --mode=kernels --backends=sonic --kernels_top=12 \
    --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels$p.log 2>&1
  echo rc $? >> $OUT/kernels$p.log
  grep "_hopper_kernel\|rc " $OUT/kernels$p.log | awk '{print $1, $NF}' | tr '\n' ' '; echo
done
for p in 1 2; do
  timeout -s KILL 80 python docs/results/scripts/layer.py sonic all /tmp/layer$p.json > $OUT/layer$p.log 2>&1
  echo rc $? >> $OUT/layer$p.log; tail -n 5 $OUT/layer$p.log
done
echo "at $SECONDS s"
