export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 240 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False > $OUT/e2e.log 2>&1; echo rc $? >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val|rc |peak|memory" $OUT/e2e.log | tail -9
timeout -s KILL 200 python -m pytest -q -p no:warnings -rA tests/test_sonic.py -k "unwritten" > $OUT/t_unwritten.log 2>&1; echo rc $? >> $OUT/t_unwritten.log
grep -E "PASSED|FAILED|passed|failed|rc " $OUT/t_unwritten.log | tail -8
