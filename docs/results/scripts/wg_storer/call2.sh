#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): the weight gradients' 16-bit gradients stored by the
# store warpgroup from one buffer the consumers fill in turn (storer.patch.txt, applied to 16-bit gradients), which
# frees 48 KB for a deeper ring: 32-row steps in 6 stages, or 64-row steps in 3, against the tree's 4 stages of 32
# rows and a buffer a consumer (wg_edge/wgedge.py; its fp32 rows are the control: that path is unchanged); then, with
# the 6 stages in place, the weight gradients' and the layer's GPU tests. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 330 python $S/wg_edge/wgedge.py $OUT/wgdeep.json head=.gpu/sk_head/sonic_kernels.py \
  k32x6=.gpu/sk_sb32x6/sonic_kernels.py k64x3=.gpu/sk_sb64x3/sonic_kernels.py > $OUT/wgdeep.log 2>&1
echo rc $? >> $OUT/wgdeep.log
grep -v -i warn $OUT/wgdeep.log
cp .gpu/sk_sb32x6/sonic_kernels.py sonic_kernels.py
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py \
  -k "(squares or wgrad or layer) and not config_choice" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
