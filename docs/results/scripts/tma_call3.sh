#!/bin/bash
export PYTHONPATH=$PWD
timeout 230 python -m pytest -q -p no:cacheprovider --durations=8 tests/test_sonic.py -k "tma or int64 or down_bwd_kernel or no_host_sync or deterministic or (matches_references and dtype1)" > $OUT/gpu_tests_tma.log 2>&1; echo "rc $?" >> $OUT/gpu_tests_tma.log
tail -15 $OUT/gpu_tests_tma.log
timeout 200 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo "rc $?" >> $OUT/kernels.log
grep -h "_kernel \|layer:\|rc \|x768\|x1536\|x4096" $OUT/kernels.log | grep -v Overrid | head -40
SK_TMA=1 timeout 70 python docs/results/scripts/layer.py tma1b 1.4B,7B $OUT/layer_tma1b.json >> $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log
cat $OUT/layer.log
