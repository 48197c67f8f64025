#!/bin/bash
# the whole layer twice more, and each GEMM against cuBLAS, with both Gluon kernels on by default
export PYTHONPATH=$PWD
timeout -s KILL 100 python docs/results/scripts/layer.py gluon2b all $OUT/layer_b.json > $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log
grep -v Warn $OUT/layer.log | tail -5
timeout -s KILL 170 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels_vs_cublas.log 2>&1; echo "rc $?" >> $OUT/kernels_vs_cublas.log
grep -E "^_(down|wgrad|grouped|up)|^layer|rc " $OUT/kernels_vs_cublas.log | cut -c1-120
timeout -s KILL 100 python docs/results/scripts/layer.py gluon2c all $OUT/layer_c.json >> $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log
grep -v Warn $OUT/layer.log | tail -5
