#!/bin/bash
# As call1.sh, with wgmc.py's producer reading a step's row indices a step ahead, as the tree's does (call1.sh ran it
# before ahead_index.diff.txt, reading them in the step: the tree's comment puts that at about 20% slower). Logs under
# $OUT.
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD OMP_NUM_THREADS=2 TRITON_DEFAULT_FP_FUSION=1 TRITON_BACKENDS_IN_TREE=1   # no AMD backend in the carry
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
F="warn|leak|nanobind|skipped rem"
timeout -s KILL 150 python docs/results/scripts/wg_mc/wgmc.py check > $OUT/check.log 2>&1; echo rc $? >> $OUT/check.log
grep -v -i -E "$F" $OUT/check.log | grep -c "equal to the tree's True"; grep -v -i -E "$F" $OUT/check.log | grep -v "True" | tail -8
timeout -s KILL 300 python docs/results/scripts/wg_mc/wgmc.py time $OUT/time.json > $OUT/time.log 2>&1; echo rc $? >> $OUT/time.log
grep -v -i -E "$F" $OUT/time.log | tail -45
