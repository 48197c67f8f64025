#!/bin/bash
# From the repository root on one H200 or H100 (its torch 2.11 + Triton 3.6), in a tree with
# docs/results/db_take/take.patch.txt applied and .gpu/sk_head carried (the unpatched sonic_kernels.py): dA' with the
# consumers running the epilogue of their halves' last TAKE slabs, against the unpatched kernel (dbab.py: bit for bit
# and timed, five shapes; TAKE 0, the patch's default, is the unpatched kernel), then the GPU tests of dA' (the patch
# adds TAKE to them). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/env.log
cat $OUT/env.log
timeout -s KILL 170 python -m pytest -q -n 8 --timeout=160 -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -4 $OUT/tests.log
timeout -s KILL 380 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json take1=TAKE:1 take2=TAKE:2 > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
