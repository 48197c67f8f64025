#!/bin/bash
# Token rounding against top-K on today's code: the README's "a 4-5% slower step at E <= 256" is from 2026-11-29.
# The train mode at h200_moe's model and batch (E = 128), eager as then, sonic only.
export PYTHONPATH=$PWD
timeout -s KILL 150 python bench.py --mode=train --backends=sonic --config_file=configs/h200_moe.py \
  --routing=both --compile=False --steps=20 --out_dir=/tmp/rt > $OUT/train_E128.log 2>&1; echo "rc $?" >> $OUT/train_E128.log
grep -E "ms/step|rc " $OUT/train_E128.log | tail -n 4
