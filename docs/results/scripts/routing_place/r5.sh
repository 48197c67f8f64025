# both changes under torch.compile and in training: custom ops, determinism, memory; h200_moe end to end
export PYTHONPATH=$PWD
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "custom_ops or deterministic or memory_contract or empty_batch" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log; tail -3 $OUT/t_sonic.log
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 130 python train.py configs/h200_moe.py $E2E --out_dir=$OUT/e2e > $OUT/e2e.log 2>&1; echo "rc $?" >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val loss|rc" $OUT/e2e.log | cut -c1-130 | tail -8
