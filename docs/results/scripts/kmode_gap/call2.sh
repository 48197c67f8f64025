#!/bin/bash
# bench.py's kernels mode with cuBLAS timed by the profiler's kernel times, on an H200 (on any other card it stops at
# once; ANY_CARD=1 runs it anywhere): its GPU tests, then three passes of the README's kernels-mode command. Logs under
# $OUT.
[ -n "$ANY_CARD" ] || nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { nvidia-smi -L; echo "not an H200"; exit 3; }
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 200 python -m pytest -q -p no:cacheprovider tests/test_bench.py -k "kernel_totals or kernels" \
  > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log; tail -n 3 $OUT/tests.log
for p in 1 2 3; do
  timeout -s KILL 100 python bench.py --mode=kernels --backends=sonic --kernels_top=12 \
    --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels$p.log 2>&1
  echo rc $? >> $OUT/kernels$p.log
  grep "_hopper_kernel\|rc " $OUT/kernels$p.log | awk '{print $1, $(NF-2), $(NF-1), $NF}' | tr '\n' ' '; echo
done
echo "at $SECONDS s"
