#!/bin/bash
# From the repository root on the machine the device lends for an H200 (torch 2.11 + Triton 3.6, the image's), with
# .gpu carried: .gpu/sk_pf holds sonic_kernels.py with the producer's L2 prefetch of the gathered rows, .gpu/sk_head
# the module before dA''s one-copy h (`git show 4c61d4e:sonic_kernels.py`). In turn: pfab.py (the
# gathered rows' latency by a proxy and by the prefetch), dbab.py (dA''s one-copy h against the kernel before, five
# shapes), the torch reference's single gather against its old form (torch_gather/probe.py), then, while time is
# left, the README's kernels-mode command and layer.py, one pass each. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 210 python docs/results/scripts/gather_rows/pfab.py .gpu/sk_pf/sonic_kernels.py $OUT/pfab.json > $OUT/pfab.log 2>&1; echo rc $? >> $OUT/pfab.log
grep -v -i warn $OUT/pfab.log
echo "at $SECONDS s"
timeout -s KILL 150 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 16
echo "at $SECONDS s"
timeout -s KILL 90 python docs/results/scripts/torch_gather/probe.py > $OUT/torch_gather_probe.log 2>&1; echo rc $? >> $OUT/torch_gather_probe.log
tail -n 5 $OUT/torch_gather_probe.log
echo "at $SECONDS s"
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
if [ $SECONDS -lt 470 ]; then
  timeout -s KILL 75 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=/tmp/k1 > $OUT/kernels_p1.log 2>&1; echo rc $? >> $OUT/kernels_p1.log
  grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels_p1.log
fi
if [ $SECONDS -lt 490 ]; then
  timeout -s KILL 95 python docs/results/scripts/layer.py sonic all $OUT/layer_1.json > $OUT/layer_1.log 2>&1; echo rc $? >> $OUT/layer_1.log
  grep -v -i warn $OUT/layer_1.log | tail -6
fi
echo "at $SECONDS s"
