# the layer's GPU tests with the router's losses in its kernels; a second pass at the 12 paper shapes
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -l 1 > $OUT/clocks.csv 2>&1 &
SMI=$!
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "every_router or deterministic or (dtype1 and (sonic_matches_references or all_tokens_on_one))" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
tail -3 $OUT/t_layer.log
timeout -s KILL 340 python bench.py --backends=sonic --check=False --out_dir=$OUT/layer12 > $OUT/bench_layer.log 2>&1; echo "rc $?" >> $OUT/bench_layer.log
grep -A13 "^whole MoE" $OUT/bench_layer.log | cut -c1-150
kill $SMI
awk -F, 'NR>1 {print $2, $5}' $OUT/clocks.csv | sort | uniq -c | sort -rn | head -6
rm -f $OUT/layer12/layer_memory.png
