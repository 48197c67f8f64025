# the 12 paper shapes, whole layer, bench.py's defaults; h200_moe end to end (the router's loss now formed in its kernels)
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -l 1 > $OUT/clocks.csv 2>&1 &
SMI=$!
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 110 python train.py configs/h200_moe.py $E2E --out_dir=$OUT/e2e > $OUT/e2e.log 2>&1; echo "rc $?" >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val loss|rc" $OUT/e2e.log | cut -c1-130 | tail -8
timeout -s KILL 340 python bench.py --backends=sonic --check=False --out_dir=$OUT/layer12 > $OUT/bench_layer.log 2>&1; echo "rc $?" >> $OUT/bench_layer.log
grep -A13 "^whole MoE" $OUT/bench_layer.log | cut -c1-150
grep -A13 "^experts only" $OUT/bench_layer.log | cut -c1-150
kill $SMI
awk -F, 'NR>1 {print $2, $5}' $OUT/clocks.csv | sort | uniq -c | sort -rn | head -6
