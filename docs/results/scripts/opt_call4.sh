#!/bin/bash
# call 4: kernels mode with the cuBLAS column at the four issue shapes; its GPU test; the eager step profile with TritonAdamW
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
timeout 240 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo "rc $?" >> $OUT/kernels.log
timeout 90 python -m pytest -q -p no:cacheprovider tests/test_bench.py -k "kernels or expert_gemms" > $OUT/pytest_bench.log 2>&1; echo "rc $?" >> $OUT/pytest_bench.log
timeout 150 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -h "_kernel\|layer:\|rc " $OUT/kernels.log | head -60; tail -2 $OUT/pytest_bench.log; tail -25 $OUT/profile.log
