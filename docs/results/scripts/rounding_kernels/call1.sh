#!/bin/bash
# Where token rounding's extra time goes, at the README's rounding shape (d = 1536, E = 128, n = 256, K = 8, 8 x 2048
# tokens): one sonic layer's forward+backward per kernel under kernels mode, top-K and rounded (kernels.log), then the
# training step split into parts under profile mode, eager (profile.log).
timeout -s KILL 200 python bench.py --mode=kernels --backends=sonic --shapes=16384x1536:256/128/8 --routing=both \
  --out_dir=/tmp/rk > $OUT/kernels.log 2>&1; echo "rc $? at $SECONDS s" >> $OUT/kernels.log
timeout -s KILL 180 python bench.py --mode=profile --backends=sonic --n_embd=1536 --n_expert=128 --batch_size=8 \
  --block_size=2048 --routing=both --compile=False --out_dir=/tmp/rp > $OUT/profile.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/profile.log
tail -3 $OUT/kernels.log $OUT/profile.log
