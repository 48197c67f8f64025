#!/bin/bash
# heavy-first Hopper weight gradients on by default: GPU tests, the whole layer, h200_moe 60 iterations
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
T=tests/test_sonic.py
timeout -s KILL 200 python -m pytest -v -p no:cacheprovider $T tests/test_bench.py::test_kernels -k "hopper or int64 or (matches_references and dtype1) or fp32_master or deterministic or memory_contract or no_host_sync or fullgraph or test_kernels" > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_tests.log | tail -20
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 170 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc |MFU" $OUT/train.log | tail -8
L=docs/results/scripts/layer.py
timeout -s KILL 110 python $L hf all $OUT/layer_hf1.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log
grep -v Warn $OUT/layer.log | tail -12
