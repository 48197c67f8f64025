#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6), with .gpu/sk_head carried: which of a stage's
# two loads the consumers wait on (W2 by TMA, then the gathered dO rows by cp.async; dbtl.py), and dA' reading dO's
# rows in order from an (R, d) tensor instead of gathering them (a proxy; dbab.py DENSE). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 150 python docs/results/scripts/db_timeline/dbtl.py $OUT/dbtl.json 1.4B 7B 120B > $OUT/dbtl.log 2>&1; echo rc $? >> $OUT/dbtl.log
grep -v -i warn $OUT/dbtl.log | grep "==\|MMAs done\|epilogue: its work\|item period\|waits on its stages\|gathered rows"
timeout -s KILL 300 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json \
  "dense dO=DENSE:1" > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
