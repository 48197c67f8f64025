#!/bin/bash
# On an H200 (on any other card it stops at once; ANY_CARD=1 runs it anywhere): call1.sh's A/B of the copies' order
# (copy_order.patch.txt applied to the tree, against c754a0f's module, .gpu/sk_tip/sonic_kernels.py, carried) and its
# GPU tests, then two passes of the README's kernels-mode command on the patched tree. Logs under $OUT.
[ -n "$ANY_CARD" ] || nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { nvidia-smi -L; echo "not an H200"; exit 3; }
bash docs/results/scripts/copy_order/call1.sh
for p in 1 2; do
  timeout -s KILL 110 python bench.py --mode=kernels --backends=sonic --kernels_top=12 \
    --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels$p.log 2>&1
  echo rc $? >> $OUT/kernels$p.log
  grep "_hopper_kernel\|rc " $OUT/kernels$p.log | awk '{print $1, $(NF-2), $(NF-1), $NF}' | tr '\n' ' '; echo
done
echo "at $SECONDS s"
