export PYTHONPATH=$PWD
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -l 1 > $OUT/clocks.csv 2>&1 &
SMI=$!
timeout -s KILL 150 python bench.py --backends=sonic --check=False --shapes=32768x4096:512/256/16,32768x4096:1024/128/8,32768x4096:2048/64/4 --out_dir=$OUT/layer120 > $OUT/bench_120B_first.log 2>&1; echo "rc $?" >> $OUT/bench_120B_first.log
grep -A4 "^whole MoE" $OUT/bench_120B_first.log | cut -c1-150
timeout -s KILL 330 python bench.py --backends=sonic --check=False --out_dir=$OUT/layer12 > $OUT/bench_layer_rep100.log 2>&1; echo "rc $?" >> $OUT/bench_layer_rep100.log
grep -A13 "^whole MoE" $OUT/bench_layer_rep100.log | cut -c1-150
kill $SMI
awk -F, 'NR>1 {print $2, $3, $4, $5}' $OUT/clocks.csv | sort | uniq -c | sort -rn | head -12
