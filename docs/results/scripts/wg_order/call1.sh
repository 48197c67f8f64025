#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' tile order (wgorder.py): the
# tree's (experts by rows, most first), rows in buckets of an eighth of the mean (most first, then by index), and the
# plain expert order, on uniform and skewed routing; then, with the buckets in place, the weight gradients' and the
# layer's GPU tests and one pass of the README's kernels-mode command. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 240 python $S/wg_order/wgorder.py $OUT/wgorder.json head=.gpu/sk_head/sonic_kernels.py \
  bucket=.gpu/sk_bucket/sonic_kernels.py expert=.gpu/sk_ident/sonic_kernels.py > $OUT/wgorder.log 2>&1; echo rc $? >> $OUT/wgorder.log
grep -v -i warn $OUT/wgorder.log
cp .gpu/sk_bucket/sonic_kernels.py sonic_kernels.py
timeout -s KILL 110 python -m pytest -q -n 6 --timeout=100 -p no:cacheprovider tests/test_sonic.py \
  -k "squares or wgrad or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
K=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
timeout -s KILL 130 python bench.py --mode=kernels --backends=sonic --kernels_top=6 --shapes=$K --out_dir=/tmp/k > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels.log
