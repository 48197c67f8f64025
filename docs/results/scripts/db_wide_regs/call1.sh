#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6), not yet run; carry .whl/t39.tar.xz (Triton 3.9.0,
# made as triton380/call.sh's header says for 3.8.0, keeping ptxas-blackwell, which 3.9 runs for sm_90, and dropping
# the old ptxas and the AMD backend: hence TRITON_BACKENDS_IN_TREE=1). dA''s 256-column items at three register
# splits (abdb.py), under Triton 3.6 and then 3.9, and the dA' tests under 3.9. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 200 python docs/results/scripts/db_wide_regs/abdb.py $OUT/abdb_t36.json > $OUT/abdb_t36.log 2>&1
echo rc $? >> $OUT/abdb_t36.log; grep -v -i warn $OUT/abdb_t36.log
mkdir -p /tmp/t39 && tar -xJf .whl/t39.tar.xz -C /tmp/t39
export TRITON_BACKENDS_IN_TREE=1
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 230 python docs/results/scripts/db_wide_regs/abdb.py $OUT/abdb_t39.json \
  > $OUT/abdb_t39.log 2>&1; echo rc $? >> $OUT/abdb_t39.log; grep -v -i warn $OUT/abdb_t39.log
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 120 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "down_bwd" \
  > $OUT/tests_t39.log 2>&1; echo rc $? >> $OUT/tests_t39.log; tail -3 $OUT/tests_t39.log
