#!/bin/bash
# dX~ and its gather-sum before the weight gradients in moe_bwd_impl (the tree) against the order before
# (abtest_old/sonic_kernels.py): h200_moe's peak by the allocator's trace (tree only; before: 33.66 GiB on an H100,
# peak_mem/call1), the whole layer at 7B in each order, on the same machine.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
python data/stdlib/prepare.py > /dev/null 2>&1
ARGS="--max_iters=4 --lr_decay_iters=4 --warmup_iters=1 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=1"
timeout -s KILL 100 python docs/results/scripts/peak_mem/peak.py configs/h200_moe.py $ARGS --out_dir=/tmp/pk > $OUT/peak.log 2>&1
echo "rc $?" >> $OUT/peak.log; grep -E "replayed peak|alive at the peak|own allocation|rc " $OUT/peak.log
for v in new old; do
  P=$PWD; [ $v = old ] && P=$PWD/abtest_old:$PWD
  timeout -s KILL 45 env PYTHONPATH=$P python docs/results/scripts/layer.py $v 7B /tmp/l_$v.json > $OUT/layer_$v.log 2>&1
  echo "$v rc $?"; grep -E "TFLOPS" $OUT/layer_$v.log | tail -2
done
