#!/bin/bash
# From the repository root on one H200: `python bench.py --backends=sonic` (the 12 paper shapes, whole layer and
# experts alone), two passes. Logs under $OUT.
export PYTHONPATH=$PWD
for p in 1 2; do
  timeout -s KILL 270 python bench.py --backends=sonic --out_dir=$OUT/b$p > $OUT/bench12_p$p.log 2>&1; echo rc $? >> $OUT/bench12_p$p.log
  grep -A13 "^whole MoE layer" $OUT/bench12_p$p.log; tail -1 $OUT/bench12_p$p.log
done
