#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6, the image's): the README's two H200 tables again, on the
# tree since the grouped GEMM's per-branch cast: the kernels-mode command three passes, then layer.py sonic all
# two passes (the whole layer). Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
for p in 1 2 3; do
  start=$SECONDS
  timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/p$p > $OUT/kernels_p$p.log 2>&1; echo rc $? >> $OUT/kernels_p$p.log
  echo "wall $((SECONDS - start)) s" >> $OUT/kernels_p$p.log
  grep "^[0-9]\+x\|_hopper_kernel\|^rc \|^wall" $OUT/kernels_p$p.log
done
for p in 1 2; do
  timeout -s KILL 110 python docs/results/scripts/layer.py sonic all $OUT/layer_$p.json > $OUT/layer_$p.log 2>&1; echo rc $? >> $OUT/layer_$p.log
  grep -v -i warn $OUT/layer_$p.log | tail -6
done
