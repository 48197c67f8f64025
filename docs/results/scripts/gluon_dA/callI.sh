#!/bin/bash
# both Gluon kernels on by default (the weight gradients heaviest expert first, and dA'): h200_moe 60
# iterations, the whole layer, then the GPU tests
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 170 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train.log | cut -c1-110 | tail -8
timeout -s KILL 110 python docs/results/scripts/layer.py gluon2 all $OUT/layer.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log
grep -v Warn $OUT/layer.log | tail -6
T=tests/test_sonic.py
timeout -s KILL 240 python -m pytest -v -p no:cacheprovider $T -k "hopper or (matches_references and dtype1) or fp32_master or memory_contract or no_host_sync or (fullgraph and topk) or deterministic" > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_tests.log | tail -20
