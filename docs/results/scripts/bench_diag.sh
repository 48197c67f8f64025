#!/bin/bash
# bench.py's whole-layer f+b against layer.py's at 1.4B and 120B: with the garbage collector on and off
export PYTHONPATH=$PWD
S="--backends=sonic --warmup=10 --rep=40 --check=False --shapes=40960x768:256/128/8,32768x4096:2048/64/4"
timeout -s KILL 80 python bench.py $S --out_dir=$OUT/gc_on > $OUT/bench_gc_on.log 2>&1
timeout -s KILL 80 python -c "import gc, sys, runpy; gc.disable(); sys.argv=['bench.py']+sys.argv[1:]; runpy.run_path('bench.py', run_name='__main__')" $S --out_dir=$OUT/gc_off > $OUT/bench_gc_off.log 2>&1
timeout -s KILL 80 python docs/results/scripts/layer.py sonic 1.4B,120B $OUT/layer.json > $OUT/layer.log 2>&1
for f in bench_gc_on bench_gc_off; do echo "== $f"; grep -A3 "^whole MoE" $OUT/$f.log | tail -2; done; grep sonic $OUT/layer.log
