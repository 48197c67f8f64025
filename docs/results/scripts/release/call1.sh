#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6), with docs/results/release/release.patch.txt
# applied and .gpu/sk_head/sonic_kernels.py (HEAD's) carried. Each consumer releases a ring stage by an arrival of
# each of its threads (no bar.sync of the warpgroup before a leader's arrive) in every Hopper kernel. The Hopper-path
# GPU tests, then A/B against HEAD: up-projection (upab), dA' (dbab), weight gradients (wgedge). ~6-7 min.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/env.log; cat $OUT/env.log
timeout 150 python -m pytest -q -n 8 --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "hopper or layer" \
  > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log; tail -3 $OUT/tests.log
timeout 120 python docs/results/scripts/up_wide/upab.py .gpu/sk_head/sonic_kernels.py $OUT/upab.json 1.4B 7B 30B odd \
  > $OUT/upab.log 2>&1; echo rc $? >> $OUT/upab.log; grep -E "bit for bit|TFLOPS|^rc" $OUT/upab.log
timeout 150 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json \
  > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log; grep -v -i warn $OUT/dbab.log
timeout 150 python docs/results/scripts/wg_edge/wgedge.py $OUT/wg.json head=.gpu/sk_head/sonic_kernels.py \
  release=sonic_kernels.py > $OUT/wg.log 2>&1; echo rc $? >> $OUT/wg.log; grep -v -i warn $OUT/wg.log | tail -30
