#!/bin/bash
# From the repository root on one H200 or H100 (its torch 2.11 + Triton 3.6), with .gpu/sk_head carried (the
# sonic_kernels.py before the change): dA''s h by one TMA copy a chunk through a (2, R, n) descriptor, against two
# copies through h's two halves (dbab.py: bit for bit and timed, five shapes), then the GPU tests of dA'. On an H200
# only, the torch reference's single gather against its old form (torch_gather/probe.py). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 300 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
timeout -s KILL 150 python -m pytest -q -n 8 --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd or sonic_matches_references or no_output_reads or memory_contract or deterministic" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -4 $OUT/tests.log
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  timeout -s KILL 120 python docs/results/scripts/torch_gather/probe.py > $OUT/torch_gather_probe.log 2>&1; echo rc $? >> $OUT/torch_gather_probe.log
  tail -n 14 $OUT/torch_gather_probe.log
fi
