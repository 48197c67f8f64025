#!/bin/bash
# From the repository root on one H200, with .gpu/t39.tar.xz carried (Triton 3.9.0; the carry's ptxas stands in for
# ptxas-blackwell, as call3.sh says). Logs under $OUT. upmc.py with its one-CTA form and its no-stores probe:
# 1. check: the 2-CTA and 1-CTA forms against float64 and the tree's Hopper kernel;
# 2. time: tree, multicast, one CTA, and both without stores, at 120B 2048/64/4, 30B and 7B, beside cuBLAS.
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD:$PWD/docs/results/scripts/mc_proxy OMP_NUM_THREADS=2
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
F="warn|leak|nanobind|skipped rem"
timeout -s KILL 120 python docs/results/scripts/mc_proxy/upmc.py check > $OUT/upmc_check.log 2>&1; echo rc $? >> $OUT/upmc_check.log
grep -v -i -E "$F" $OUT/upmc_check.log | grep -v "^ -" | tail -22
timeout -s KILL 300 python docs/results/scripts/mc_proxy/upmc.py time $OUT/upmc_time.json > $OUT/upmc_time.log 2>&1; echo rc $? >> $OUT/upmc_time.log
grep -v -i -E "$F" $OUT/upmc_time.log | grep -v "^ -" | tail -60
