#!/bin/bash
# From the repository root, with the gradients kept under graphs at every accumulation (since: only with more than one micro-step); the quick start as configs/default.py now sets it
# the quick start's train command (configs/default.py, now CUDA-graphed) for 60 iterations; h200_moe under reduce-overhead
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 100 python train.py configs/default.py --max_iters=60 --eval_interval=30 --eval_iters=5 --out_dir=$OUT/ckdefault > $OUT/quick.log 2>&1; echo "rc $?" >> $OUT/quick.log
grep -E "iter (10|30|50)|val|rc |Error|saving" $OUT/quick.log | cut -c1-140 | tail -8; ls -la $OUT/ckdefault; rm -rf $OUT/ckdefault
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 120 python train.py configs/h200_moe.py $E --compile_mode=reduce-overhead > $OUT/h200_ro.log 2>&1; echo "rc $?" >> $OUT/h200_ro.log
grep -E "iter (10|30|50)|val|rc |Error" $OUT/h200_ro.log | cut -c1-140 | tail -6
