#!/bin/bash
# bench's profile of h200_moe with train.py's vocabulary (256) and its per-part kernel list; the profile GPU tests;
# h200_moe end to end with dA''s 256-column items
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 170 python -m pytest -v -x tests/test_sonic.py -k "hopper_down_bwd or test_deterministic or (dtype1 and (sonic_matches_references or all_tokens_on_one or variable_experts))" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
grep -c PASSED $OUT/t_layer.log; grep -E "FAILED|Error|rc " $OUT/t_layer.log | tail -5
timeout -s KILL 130 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -v "^frame" $OUT/profile.log | tail -n 40
timeout -s KILL 100 python -m pytest -q tests/test_bench.py -k "profile_counts_every_kernel" > $OUT/t_profile.log 2>&1; echo "rc $?" >> $OUT/t_profile.log
tail -n 5 $OUT/t_profile.log
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 110 python train.py configs/h200_moe.py $E2E --out_dir=$OUT/e2e > $OUT/e2e.log 2>&1; echo "rc $?" >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val loss|peak|memory|rc" $OUT/e2e.log | tail -9
# the same with twice the batch (32,768 tokens an iteration): how much of the step is the optimizer's fixed cost
timeout -s KILL 120 python train.py configs/h200_moe.py $E2E --batch_size=16 --out_dir=$OUT/e2e_b16 > $OUT/e2e_b16.log 2>&1; echo "rc $?" >> $OUT/e2e_b16.log
grep -E "^iter (10|20|30|40|50)|val loss|peak|memory|rc" $OUT/e2e_b16.log | tail -9
