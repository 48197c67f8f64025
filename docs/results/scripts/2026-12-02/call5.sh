#!/bin/bash
# final code: whole-layer GPU tests (bf16 on the H200), h200_moe 60 iterations with fp32 and bf16 AdamW moments
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > $OUT/env.txt
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 170 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "sonic_matches_references or all_tokens_on_one or variable_experts or memory_contract or deterministic or fp32_master or custom_ops or int64 or hopper_down_bwd" > $OUT/pytest_sonic.log 2>&1; echo "rc $?" >> $OUT/pytest_sonic.log
tail -3 $OUT/pytest_sonic.log
for s in float32 bfloat16; do
  timeout -s KILL 120 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 \
    --eval_iters=2 --save_checkpoints=False --log_interval=10 --adamw_states=$s --out_dir=$OUT/run_$s > $OUT/train_$s.log 2>&1
  echo "rc $?" >> $OUT/train_$s.log
  grep -E "^iter|^step|rc " $OUT/train_$s.log | tail -8 | cut -c1-130
done
