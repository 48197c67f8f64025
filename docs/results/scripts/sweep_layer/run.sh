#!/bin/bash
# The README's granularity sweep (bench.py --mode=sweep: the whole layer, then the experts alone), on any card; then,
# on an H200 only, the README's kernels-mode command while time is left (cuBLAS by the profiler's kernel times). Logs
# under $OUT. SKIP_SWEEP=1 runs the kernels-mode passes alone; a pass starts only before PASS_UNTIL seconds (320).
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && H200=1
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
git rev-parse HEAD >> $OUT/env.log 2>/dev/null; cat $OUT/env.log
if [ -z "$SKIP_SWEEP" ]; then
  timeout -s KILL 300 python bench.py --mode=sweep --out_dir=$OUT/sweep --warmup=10 --rep=50 --check=False \
    > $OUT/sweep.log 2>&1; echo rc $? >> $OUT/sweep.log
  grep -A 14 "^whole MoE layer" $OUT/sweep.log; echo "sweep done at $SECONDS s"
  rm -f $OUT/sweep/*.png
fi
[ -n "$H200" ] || { echo "not an H200: no kernels-mode passes"; exit 0; }
for p in 1 2 3; do
  [ $SECONDS -lt ${PASS_UNTIL:-320} ] || { echo "no time for pass $p"; break; }
  timeout -s KILL 110 python bench.py --mode=kernels --backends=sonic --kernels_top=12 \
    --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels$p.log 2>&1
  echo rc $? >> $OUT/kernels$p.log
  grep "_hopper_kernel\|rc " $OUT/kernels$p.log | awk '{print $1, $(NF-2), $(NF-1), $NF}' | tr '\n' ' '; echo
done
echo "at $SECONDS s"
