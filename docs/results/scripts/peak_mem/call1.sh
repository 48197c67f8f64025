#!/bin/bash
# What the peak of h200_moe's compiled training step holds (the README's 33.7 GiB for sonic), by the allocator's
# trace: 4 iterations, then the blocks alive at the peak by where they were allocated.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
ARGS="--max_iters=4 --lr_decay_iters=4 --warmup_iters=1 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=1"
timeout -s KILL 200 python docs/results/scripts/peak_mem/peak.py configs/h200_moe.py $ARGS --out_dir=/tmp/pk > $OUT/sonic.log 2>&1
echo "rc $?" >> $OUT/sonic.log
grep -v "^iter\|^step" $OUT/sonic.log | tail -n 60
