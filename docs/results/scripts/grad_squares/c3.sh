export PYTHONPATH=$PWD
timeout -s KILL 100 python -m pytest -q -x -p no:warnings tests/test_sonic.py -k "(hopper_wgrad_matches and None) or squares" > $OUT/t_wgrad.log 2>&1; echo rc $? >> $OUT/t_wgrad.log
tail -2 $OUT/t_wgrad.log
timeout -s KILL 120 python -m pytest -q -x -p no:warnings tests/test_sonic.py -k "compile or memory_contract or deterministic or custom_op or copies or fp32_master" > $OUT/t_layer.log 2>&1; echo rc $? >> $OUT/t_layer.log
tail -2 $OUT/t_layer.log
python data/stdlib/prepare.py > /dev/null 2>&1
for flag in True False; do
timeout -s KILL 120 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --kernel_grad_norm=$flag > $OUT/e2e_$flag.log 2>&1; echo rc $? >> $OUT/e2e_$flag.log
echo "== $flag"; grep -E "^gradient norm|^iter (20|30|40|50)|val|rc |done" $OUT/e2e_$flag.log | tail -7
done
timeout -s KILL 170 python -m pytest -q -x -p no:warnings tests/test_train.py -k "cuda_graphs_train" > $OUT/t_graphs.log 2>&1; echo rc $? >> $OUT/t_graphs.log
tail -2 $OUT/t_graphs.log
