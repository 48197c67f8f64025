#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6): dA' with its accumulators handed over one
# consumer's half at a time (32 KB) and the room that frees given to a deeper TMA ring of h (HRING chunks), against
# the last commit's kernel (.gpu/sk_head): abmods.py at five shapes with HRING 2, 4 and 6; then the GPU tests of dA'
# and the layer. It ran on a tree with half_handover_ring.patch.txt applied (not kept). Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts/db_stalls
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
for r in 2 4 6; do sed "s/HRING: gl.constexpr = 6,/HRING: gl.constexpr = $r,/" sonic_kernels.py > /tmp/sk_hr$r.py; done
timeout -s KILL 330 python $S/abmods.py $OUT/ab.json head=.gpu/sk_head/sonic_kernels.py hr2=/tmp/sk_hr2.py \
  hr4=/tmp/sk_hr4.py hr6=/tmp/sk_hr6.py > $OUT/ab.log 2>&1; echo rc $? >> $OUT/ab.log
grep -v -i warn $OUT/ab.log
timeout -s KILL 200 python -m pytest -q -n 6 --timeout=190 -p no:cacheprovider tests/test_sonic.py -k "down_bwd or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
