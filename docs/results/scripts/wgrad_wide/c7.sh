export PYTHONPATH=$PWD
nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader
timeout -s KILL 360 python bench.py --backends=sonic --check=False --out_dir=$OUT/layer12 > $OUT/bench_layer.log 2>&1; echo "rc $?" >> $OUT/bench_layer.log
grep -v Warn $OUT/bench_layer.log | tail -40
