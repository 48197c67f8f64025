#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): dA''s epilogue with h's chunks and their scores
# fetched into L2 some chunks ahead (DB_PREFETCH), against the last commit's kernel (.gpu/sk_head). It ran on a tree
# with l2_prefetch.patch.txt applied (git apply); the patch was not kept. Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts/db_stalls
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
for p in 0 3 6 10; do sed "s/DB_PREFETCH = gl.constexpr(6)/DB_PREFETCH = gl.constexpr($p)/" sonic_kernels.py > /tmp/sk_pf$p.py; done
timeout -s KILL 420 python $S/abmods.py $OUT/ab.json head=.gpu/sk_head/sonic_kernels.py pf0=/tmp/sk_pf0.py \
  pf3=/tmp/sk_pf3.py pf6=/tmp/sk_pf6.py pf10=/tmp/sk_pf10.py > $OUT/ab.log 2>&1; echo rc $? >> $OUT/ab.log
grep -v -i warn $OUT/ab.log
