#!/bin/bash
# From the repository root on one H200, with .gpu/t39.tar.xz carried (Triton 3.9.0 for Python 3.12: the wheel without
# cupti, cupti-blackwell, proton, instrumentation, the AMD backend and ptxas-blackwell, libtriton.so stripped; made as
# docs/results/scripts/triton371/call.sh says). Triton 3.9 builds sm_90 with ptxas-blackwell: the carry's ptxas stands
# in (TRITON_PTXAS_BLACKWELL_PATH), as in mc_proxy/call3.sh. Logs under $OUT.
# 1. wgmc.py check: the weight gradients' dW1 on 2-CTA clusters sharing dH's blocks by TMA multicast (a prototype, not
#    in the kernels), and the same kernel on one CTA, against float64 and the tree's kernel, small shapes.
# 2. wgmc.py time: 7B, 30B and 120B 2048/64/4 against the tree's fp32 kernel and cuBLAS's bmm.
# It ran wgmc.py as it was before ahead_index.diff.txt (its indices read in the step).
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD OMP_NUM_THREADS=2 TRITON_DEFAULT_FP_FUSION=1 TRITON_BACKENDS_IN_TREE=1   # no AMD backend in the carry
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
F="warn|leak|nanobind|skipped rem"
timeout -s KILL 150 python docs/results/scripts/wg_mc/wgmc.py check > $OUT/check.log 2>&1; echo rc $? >> $OUT/check.log
grep -v -i -E "$F" $OUT/check.log | tail -30
timeout -s KILL 300 python docs/results/scripts/wg_mc/wgmc.py time $OUT/time.json > $OUT/time.log 2>&1; echo rc $? >> $OUT/time.log
grep -v -i -E "$F" $OUT/time.log | tail -45
