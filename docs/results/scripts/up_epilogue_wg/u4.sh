#!/bin/bash
# bench's profile mode with every GPU kernel given a part (h200_moe and the GPU tests); the per-kernel table at the
# paper's four shapes with the Hopper up-projection
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 150 python -m pytest -q tests/test_bench.py -k "profile" > $OUT/t_profile.log 2>&1; echo "rc $?" >> $OUT/t_profile.log
tail -n 15 $OUT/t_profile.log
timeout -s KILL 130 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -v "^frame" $OUT/profile.log | tail -n 22
timeout -s KILL 200 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 --out_dir=$OUT/kernels > $OUT/kernels.log 2>&1; echo "rc $?" >> $OUT/kernels.log
grep -v "^frame" $OUT/kernels.log | tail -n 75
