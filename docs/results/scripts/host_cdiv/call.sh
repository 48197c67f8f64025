#!/bin/bash
# From the repository root on one H200 (Triton 3.6), with .gpu carried: .gpu/sk_before/sonic_kernels.py is the kernel
# file at 107a103, before the host's own cdiv/next_pow2 (and the one-launch AdamW, which the layer does not run):
#   mkdir -p .gpu/sk_before && git show 107a103:sonic_kernels.py > .gpu/sk_before/sonic_kernels.py
# 1. test_model (AdamW's launch grouping, the GPT) on the GPU; 2. the 1.4B shapes' host time (bench.py layer mode with
# --cuda_graphs=True prints the host's time to enqueue an eager step), before and after, alternated twice.
# Logs under $OUT: device.txt, summary.txt, logs.tar.gz.
export PYTHONPATH=$PWD
L=/tmp/logs && rm -rf $L && mkdir -p $L
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > $OUT/device.txt 2>&1
timeout -s KILL 170 python -m pytest -q -n 4 -p no:cacheprovider tests/test_model.py > $L/model_tests.log 2>&1
echo "rc $?" >> $L/model_tests.log
{ echo "== test_model on the GPU"; tail -4 $L/model_tests.log; } >> $OUT/summary.txt
rm -rf /tmp/before && mkdir /tmp/before && cp -r *.py configs data /tmp/before/ && cp .gpu/sk_before/sonic_kernels.py /tmp/before/
i=0
for run in before after before after; do
  if [ $run = before ]; then D=/tmp/before; else D=$PWD; fi
  i=$((i+1)); F=$L/bench_${run}_$i.log
  (cd $D && PYTHONPATH=$D timeout -s KILL 100 python bench.py --only=1.4B --backends=sonic --cuda_graphs=True \
     --check=False --out_dir=$L/b_${run}_$i > $F 2>&1; echo "rc $?" >> $F)
  { echo "== $run $i"; grep -v -i warn $F | tail -30; } >> $OUT/summary.txt
done
tar -czf $OUT/logs.tar.gz -C /tmp logs
cat $OUT/summary.txt
