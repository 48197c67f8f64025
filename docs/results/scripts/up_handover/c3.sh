export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 120 python -m pytest -q -p no:warnings tests/test_sonic.py -k "hopper_up" > $OUT/t_up.log 2>&1; echo rc $? >> $OUT/t_up.log
tail -2 $OUT/t_up.log
timeout -s KILL 150 python -m pytest -q -p no:warnings tests/test_train.py -k "kernel_grad_norm or expert_copies_change" > $OUT/t_train.log 2>&1; echo rc $? >> $OUT/t_train.log
tail -2 $OUT/t_train.log
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 200 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False > $OUT/e2e.log 2>&1; echo rc $? >> $OUT/e2e.log
grep -E "^gradient norm|^iter (10|20|30|40|50)|val|rc |peak|memory" $OUT/e2e.log | tail -9
timeout -s KILL 220 python bench.py --backends=sonic > $OUT/bench12.log 2>&1; echo rc $? >> $OUT/bench12.log
grep -v Warn $OUT/bench12.log | tail -40
