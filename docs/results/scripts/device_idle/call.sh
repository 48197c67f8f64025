#!/bin/bash
# From the repository root on one H200: where h200_moe's compiled step leaves the device idle. bench.py's profile
# (first a pass with only the device's activity traced, then the parts), train.py's own step on the same
# machine, then the GPU profile tests. Logs to $OUT. The pass with only the device's activity traced was in bench.py
# at this run (main 107a103 plus that change) and left it after: CUPTI's host cost binds the step there too.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/env.log 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log 2>&1
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1
timeout -s KILL 170 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --profile_steps=5 \
  --out_dir=$OUT/compiled > $OUT/profile_compiled.log 2>&1; echo "rc $?" >> $OUT/profile_compiled.log
grep -v -i warn $OUT/profile_compiled.log | grep -E -A7 "ms per step|alone traced|^[a-z].{20}[ 0-9.]{10}|rc " | head -40
timeout -s KILL 130 python train.py configs/h200_moe.py --max_iters=50 --lr_decay_iters=50 --warmup_iters=10 \
  --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10 --out_dir=$OUT/train \
  > $OUT/train.log 2>&1; echo "rc $?" >> $OUT/train.log
grep -E "^iter|rc " $OUT/train.log | cut -c1-140
timeout -s KILL 170 python -m pytest -v -p no:cacheprovider tests/test_bench.py -k "sonic_layer or every_kernel" \
  > $OUT/profile_tests.log 2>&1; echo "rc $?" >> $OUT/profile_tests.log
grep -E "PASSED|FAILED|ERROR|SKIPPED|rc |^E " $OUT/profile_tests.log | tail -8
