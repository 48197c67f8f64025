#!/bin/bash
# From the repository root on one H200, with .gpu/t39.tar.xz carried (Triton 3.9.0, as call2.sh says). Triton 3.9
# compiles sm_90 with ptxas-blackwell, which the carry leaves out (its 64 MiB limit): the carry's ptxas (CUDA 12.9)
# stands in (TRITON_PTXAS_BLACKWELL_PATH). Logs under $OUT.
# 1. two_cta_barrier.py run: a 2-CTA cluster's multicast TMA load and two-CTA barrier on the H200.
# 2. upmc.py check: the up-projection on 2-CTA clusters sharing W1's blocks by TMA multicast (a prototype, not in the
#    kernels) against float64 and the tree's Hopper kernel, small shapes, 1 to 3 clusters walking many items.
# 3. upmc.py time: 120B 2048/64/4, 30B and 7B against the tree's kernel (alternating rounds) and cuBLAS.
# 4. test_sonic's Hopper-path tests under 3.9 (not the compile ones: torch 2.11's inductor is not built for it).
# 5. layer.py sonic all under 3.9.
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD:$PWD/docs/results/scripts/mc_proxy OMP_NUM_THREADS=2
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
F="warn|leak|nanobind|skipped rem"
timeout -s KILL 60 python docs/results/scripts/mc_proxy/two_cta_barrier.py run > $OUT/two_cta.log 2>&1; echo rc $? >> $OUT/two_cta.log
grep -v -i -E "$F" $OUT/two_cta.log | tail -4
timeout -s KILL 120 python docs/results/scripts/mc_proxy/upmc.py check > $OUT/upmc_check.log 2>&1; echo rc $? >> $OUT/upmc_check.log
grep -v -i -E "$F" $OUT/upmc_check.log | tail -16
timeout -s KILL 150 python docs/results/scripts/mc_proxy/upmc.py time $OUT/upmc_time.json > $OUT/upmc_time.log 2>&1; echo rc $? >> $OUT/upmc_time.log
grep -v -i -E "$F" $OUT/upmc_time.log | tail -24
timeout -s KILL 120 python -m pytest -q -n 6 --timeout=110 -p no:cacheprovider tests/test_sonic.py -k "hopper and not compile" > $OUT/t39_tests.log 2>&1; echo rc $? >> $OUT/t39_tests.log
grep -E "FAILED|ERROR" $OUT/t39_tests.log | head -8; tail -2 $OUT/t39_tests.log
timeout -s KILL 110 python docs/results/scripts/layer.py sonic all $OUT/t39_layer.json > $OUT/t39_layer.log 2>&1; echo rc $? >> $OUT/t39_layer.log
grep -v -i warn $OUT/t39_layer.log | tail -6
