#!/bin/bash
# Two more passes of bench.py's kernels mode (the dense GEMMs in the layer's passes, 2 s warm-up) at the README's four
# shapes; one with no warm-up at 1.4B and 7B; then test_bench's kernels tests. From the repository root on the H200.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/call3.log 2>&1
for p in 1 2; do
  timeout -s KILL 200 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/p$p > $OUT/kernels_p$p.log 2>&1
  echo "rc $?" >> $OUT/kernels_p$p.log
done
timeout -s KILL 90 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8 --kernel_warm_ms=0 --out_dir=$OUT/w0 > $OUT/kernels_warm0.log 2>&1
echo "rc $?" >> $OUT/kernels_warm0.log
timeout -s KILL 100 python -m pytest -q tests/test_bench.py -k "kernels or expert_gemms or warm_up" >> $OUT/call3.log 2>&1
echo "rc $?" >> $OUT/call3.log
