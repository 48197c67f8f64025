#!/bin/bash
# From the repository root on one H200, with .gpu/t39.tar.xz carried (as call4.sh). upmc.py ring: the 2-CTA and 1-CTA
# forms with 32-column steps in 8 stages against 64-column steps in 4, with and without the epilogue's stores, at 120B
# 2048/64/4 and 30B. Logs under $OUT.
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD:$PWD/docs/results/scripts/mc_proxy OMP_NUM_THREADS=2
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
timeout -s KILL 300 python docs/results/scripts/mc_proxy/upmc.py ring $OUT/upmc_ring.json > $OUT/upmc_ring.log 2>&1; echo rc $? >> $OUT/upmc_ring.log
grep -v -i -E "warn|leak|nanobind|skipped rem" $OUT/upmc_ring.log | grep -v "^ -" | tail -60
