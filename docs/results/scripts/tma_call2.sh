#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
timeout 210 python -m pytest -q -p no:cacheprovider tests/test_sonic.py > $OUT/gpu_tests_sonic.log 2>&1; echo "rc $?" >> $OUT/gpu_tests_sonic.log
tail -3 $OUT/gpu_tests_sonic.log
for m in 1 0; do SK_TMA=$m timeout 90 python docs/results/scripts/layer.py tma$m all $OUT/layer_tma$m.json >> $OUT/layer.log 2>&1; echo "rc $m $?" >> $OUT/layer.log; done
cat $OUT/layer.log
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout 170 python train.py configs/h200_moe.py $E > $OUT/train_h200_moe.log 2>&1; echo "rc $?" >> $OUT/train_h200_moe.log
grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train_h200_moe.log | tail -12
