#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' producer reading its row
# indices two or three steps ahead instead of one (.gpu/: the tree before, two ahead = the tree's change, three ahead),
# bit for bit and timed (wg_edge/wgedge.py); then, with the tree as it is (two ahead), the weight gradients' and the
# layer's GPU tests and one pass of the README's kernels-mode command. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python $S/wg_edge/wgedge.py $OUT/wgindex.json head=.gpu/sk_head/sonic_kernels.py \
  ahead2=.gpu/sk_ix2/sonic_kernels.py ahead3=.gpu/sk_ix3/sonic_kernels.py > $OUT/wgindex.log 2>&1; echo rc $? >> $OUT/wgindex.log
grep -v -i warn $OUT/wgindex.log
timeout -s KILL 130 python -m pytest -q -n 6 --timeout=120 -p no:cacheprovider tests/test_sonic.py \
  -k "squares or wgrad or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
K=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=6 --shapes=$K --out_dir=/tmp/k > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels.log
