#!/bin/bash
# the GPU tests and h200_moe's 60 iterations on the tree
export PYTHONPATH=$PWD
timeout -s KILL 230 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper or (matches_references and dtype1) or fp32_master or memory_contract or no_host_sync or (fullgraph and topk) or deterministic or int64" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -12
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 200 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc |MFU|tokens" $OUT/train.log | cut -c1-140 | tail -10
