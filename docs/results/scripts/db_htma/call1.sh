#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6), with .gpu/sk_head carried (the last commit's
# sonic_kernels.py): dA''s h read by TMA into a two-chunk ring in its epilogue against h loaded into registers a chunk
# ahead (dbab.py: bit for bit and timed, five shapes), then the GPU tests of dA' and the layer. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/env.log
timeout -s KILL 240 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
timeout -s KILL 240 python -m pytest -q -n 6 --timeout=230 -p no:cacheprovider tests/test_sonic.py -k "down_bwd or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
