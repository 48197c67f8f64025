#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6), the tree as committed (dA''s epilogue with h in
# registers): the Hopper dA' and layer tests; bench.py --mode=kernels at the README's four shapes (every expert GEMM
# beside cuBLAS); layer.py sonic all, two passes (the whole layer). Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "down_bwd or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep -E "_kernel|x[0-9]+:|rc " $OUT/kernels.log | grep -v "^TFLOPS" | tail -40
for p in 1 2; do
  timeout -s KILL 120 python docs/results/scripts/layer.py sonic all $OUT/layer_$p.json > $OUT/layer_$p.log 2>&1; echo rc $? >> $OUT/layer_$p.log
  grep -v -i warn $OUT/layer_$p.log | tail -6
done
