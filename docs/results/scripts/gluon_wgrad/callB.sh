#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 150 python docs/results/scripts/gluon_wgrad/layer_ab.py 7B,30B,120B 2 500 $OUT/layer_ab.json > $OUT/layer_ab.log 2>&1
echo "rc $?" >> $OUT/layer_ab.log; cat $OUT/layer_ab.log
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 170 python train.py configs/h200_moe.py $E > $OUT/train_gluon.log 2>&1; echo "rc $?" >> $OUT/train_gluon.log
grep -E "iter (10|20|30|40|50)|val|rc |MFU" $OUT/train_gluon.log | tail -8
timeout -s KILL 170 python -c "
import sys, runpy, sonic_kernels
sonic_kernels.HOPPER_WGRAD = False
sys.argv = ['train.py', 'configs/h200_moe.py'] + sys.argv[1:]
runpy.run_path('train.py', run_name='__main__')" $E > $OUT/train_triton.log 2>&1; echo "rc $?" >> $OUT/train_triton.log
grep -E "iter (10|20|30|40|50)|val|rc |MFU" $OUT/train_triton.log | tail -8
