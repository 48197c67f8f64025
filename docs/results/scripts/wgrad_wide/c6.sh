export PYTHONPATH=$PWD
timeout -s KILL 200 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 --out_dir=$OUT/kernels > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep -E "hopper|rc " $OUT/kernels.log
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 220 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False > $OUT/e2e.log 2>&1; echo rc $? >> $OUT/e2e.log
grep -E "^iter|val|rc " $OUT/e2e.log | tail -10
