#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 120 python -m pytest -v -p no:cacheprovider tests/test_bench.py::test_kernels > $OUT/gpu_test_bench.log 2>&1; echo "rc $?" >> $OUT/gpu_test_bench.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc |Error" $OUT/gpu_test_bench.log | tail -5
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels_vs_cublas.log 2>&1; echo "rc $?" >> $OUT/kernels_vs_cublas.log
grep -E "^_(down|wgrad|grouped|up)|rc " $OUT/kernels_vs_cublas.log | cut -c1-120
