#!/bin/bash
# From the root of a checkout of this branch, after: mkdir -p .gpu && git show 32e1c37:sonic_kernels.py > .gpu/sk_main.py
# (run with carry=[".gpu"]): the epilogue-warpgroup dA' kernel against main's and the Triton kernel,
# its GPU tests, then h200_moe's 60 iterations
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/gluon_dA/epi_probe.py $OUT/epi_probe.json > $OUT/epi_probe.log 2>&1
echo "rc $?" >> $OUT/epi_probe.log; grep -v Warn $OUT/epi_probe.log
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd or (matches_references and dtype1) or deterministic" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -12
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 170 python train.py configs/h200_moe.py $E > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train.log | cut -c1-110 | tail -8
