#!/bin/bash
# Token rounding on the sonic backend's fused router (abtest_rr/: the router's kernels also write the (E, T) scores
# and take their gradient) against the reference router it ran on (abtest_main/: the tree before, e0d0439): the
# README's rounding command (d = 1536, E = 128, batch 8 x 2048, random tokens, eager), top-K and rounded, each tree's
# bench.py, in the order the arguments give (main rr unless told). ms/step and peak MiB per run in each.txt.
export PYTHONPATH=$PWD
for v in ${*:-main rr}; do
  timeout -s KILL 110 python abtest_$v/bench.py --mode=train --backends=sonic --n_embd=1536 --n_expert=128 \
    --batch_size=8 --block_size=2048 --routing=both --steps=20 --out_dir=/tmp/rf_$v > /tmp/rf_$v.log 2>&1
  echo "rc $?" >> /tmp/rf_$v.log; cat /tmp/rf_$v.log >> $OUT/train_$v.log  # appended: a second run of a tree follows its first
  grep -E "ms/step|rc " /tmp/rf_$v.log | sed "s/^/$v /" | tee -a $OUT/each.txt
done
