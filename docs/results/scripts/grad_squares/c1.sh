export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "hopper_wgrad or squares" > $OUT/t_wgrad.log 2>&1; echo rc $? >> $OUT/t_wgrad.log
tail -3 $OUT/t_wgrad.log
timeout -s KILL 110 python .gpu/sq_probe.py > $OUT/sq_probe.log 2>&1; echo rc $? >> $OUT/sq_probe.log
grep -v Warn $OUT/sq_probe.log
python data/stdlib/prepare.py > /dev/null 2>&1
for run in 1 2; do for flag in True False; do
timeout -s KILL 100 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --kernel_grad_norm=$flag > $OUT/e2e_${flag}_$run.log 2>&1; echo rc $? >> $OUT/e2e_${flag}_$run.log
echo "== $flag $run"; grep -E "^gradient norm|^iter (20|30|40|50)|val|rc |done" $OUT/e2e_${flag}_$run.log | tail -8
done; done
