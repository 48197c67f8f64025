#!/bin/bash
# Token rounding's pair list built from the selection in one kernel (this tree: sonic_kernels.round_pairs) against
# the torch ops that built it (abtest_main/: 6b78125's top-level files): the README's rounding command (d = 1536,
# E = 128, batch 8 x 2048, random tokens, eager), top-K and rounded, main, this tree, main, this tree; ms/step and
# peak MiB per run in each.txt. Then one layer's kernels at that shape, top-K and rounded, on this tree (kernels.log).
export PYTHONPATH=$PWD
for v in main new main new; do
  b=abtest_$v/bench.py; [ $v = new ] && b=bench.py
  timeout -s KILL 100 python $b --mode=train --backends=sonic --n_embd=1536 --n_expert=128 \
    --batch_size=8 --block_size=2048 --routing=both --steps=20 --out_dir=/tmp/rp_$v > /tmp/rp_$v.log 2>&1
  echo "rc $? at $SECONDS s" >> /tmp/rp_$v.log; cat /tmp/rp_$v.log >> $OUT/train_$v.log
  grep -E "ms/step|rc " /tmp/rp_$v.log | sed "s/^/$v /" | tee -a $OUT/each.txt
done
timeout -s KILL 90 python bench.py --mode=kernels --backends=sonic --shapes=16384x1536:256/128/8 --routing=both \
  --out_dir=/tmp/rk > $OUT/kernels.log 2>&1; echo "rc $? at $SECONDS s" >> $OUT/kernels.log
grep -E "^layer:|round|rc " $OUT/kernels.log
