#!/bin/bash
# bench's profile mode (kernel intervals from the GPU's events) on h200_moe; the weight gradients' staggered starts
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 120 python -m pytest -q -x tests/test_sonic.py -k "hopper_wgrad_matches" > $OUT/t_wgrad.log 2>&1; echo "rc $?" >> $OUT/t_wgrad.log
tail -n 3 $OUT/t_wgrad.log
timeout -s KILL 220 python .gpu/wgstagger.py $OUT/wgstagger.json > $OUT/wgstagger.log 2>&1; echo "rc $?" >> $OUT/wgstagger.log
cat $OUT/wgstagger.log
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 130 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -v "^frame" $OUT/profile.log | tail -n 40
