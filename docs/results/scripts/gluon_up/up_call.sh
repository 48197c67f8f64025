#!/bin/bash
# From the root of a checkout of this branch (run with carry=[".gpu"] if it exists): the Gluon
# up-projection against float64 and the Triton kernel, its GPU tests, then h200_moe's 60 iterations
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/gluon_up/up_probe.py $OUT/up_probe.json > $OUT/up_probe.log 2>&1
echo "rc $?" >> $OUT/up_probe.log; grep -v Warn $OUT/up_probe.log
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper_up or (matches_references and dtype1) or memory_contract" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -12
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 170 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train.log | cut -c1-110 | tail -8
