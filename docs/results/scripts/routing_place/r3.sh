# bench.py's profile with the routing kernels by name; h200_moe end to end; the six small shapes
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 120 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo rc $? >> $OUT/profile.log
grep -v Warn $OUT/profile.log | grep -E "per step|^moe|^idle|^optimizer|^attention|  moe|rc " | cut -c1-200
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 120 python train.py configs/h200_moe.py $E2E --out_dir=$OUT/e2e > $OUT/e2e.log 2>&1; echo "rc $?" >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val loss|rc" $OUT/e2e.log | cut -c1-130 | tail -8
timeout -s KILL 220 python bench.py --backends=sonic --check=False --shapes=40960x768:256/128/8,40960x768:512/64/4,40960x768:1024/32/2,24576x1536:256/128/8,24576x1536:512/64/4,24576x1536:1024/32/2 --out_dir=$OUT/bench_small > $OUT/bench_small.log 2>&1; echo rc $? >> $OUT/bench_small.log
grep -A9 "^whole MoE" $OUT/bench_small.log | cut -c1-150
