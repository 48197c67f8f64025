#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6), with .gpu/sk_head carried: dA''s wide items
# with 4 stages and the hand-over one consumer's half at a time (HALVES), which the epilogue's h in registers leaves
# room for, against the tree's 3 stages and the last commit's kernel; stamps of the 4-stage form; the Hopper dA' tests.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 300 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json \
  "4 stages halves=STAGES:4,HALVES:1" > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
timeout -s KILL 150 python -m pytest -q -n 6 --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "down_bwd" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
