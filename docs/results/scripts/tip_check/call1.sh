#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the tree's kernels at the tip, unchanged this day
# since dA''s h by TMA and the portable weight gradients' one-sum squares: their GPU tests (float64 references, bf16
# and fp16), then the README's kernels-mode command once and layer.py once. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python -m pytest -q -n 6 --timeout=280 -p no:cacheprovider tests/test_sonic.py \
  -k "squares or wgrad or down_bwd or layer or int64 or up or grouped" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/k > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels.log
timeout -s KILL 120 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1; echo rc $? >> $OUT/layer.log
grep -v -i warn $OUT/layer.log | tail -6
