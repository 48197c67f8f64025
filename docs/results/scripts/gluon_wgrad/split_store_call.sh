#!/bin/bash
# From the root of a checkout of branch try/wgrad-fp32-split: the probe; the weight-gradient GPU tests;
# h200_moe's 60 iterations (its fp32 gradients now by TMA); layer.py once
export PYTHONPATH=$PWD
timeout -s KILL 180 python docs/results/scripts/gluon_wgrad/split_store_probe.py $OUT/split_store_probe.json > $OUT/split_store_probe.log 2>&1
echo "rc $?" >> $OUT/split_store_probe.log; grep -v Warn $OUT/split_store_probe.log | grep -v triton
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper_wgrad or (matches_references and dtype1) or fp32_master" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -8
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 120 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train.log | cut -c1-110 | tail -7
