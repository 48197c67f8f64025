#!/bin/bash
# From the repository root on one H200, with .gpu/sk_head carried: dbab.py with two variants of the tree's dA'
# (each config key changed in both configs): the 128-column items' config at every shape (narrow), and the wide
# items' registers moved from the epilogue to the consumers (regs: 168 / 144 / 32, no spills under Triton 3.6).
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 300 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json \
  narrow=BLOCK_N:128,STAGES:4,ACC16:0,CONSUMER_REGS:144,EPILOGUE_REGS:152,PRODUCER_REGS:72 \
  regs=CONSUMER_REGS:168,EPILOGUE_REGS:144,PRODUCER_REGS:32 > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
