#!/bin/bash
# It failed at its first compile: Triton 3.9 builds sm_90 with ptxas-blackwell, which the carry leaves out (logs in
# docs/results/mc_proxy/t39/); call3.sh runs its steps again with the carry's ptxas standing in.
# From the repository root on one H200, with .gpu/t39.tar.xz carried: Triton 3.9.0 (the first whose Gluon has a
# two-CTA mbarrier), the wheel without cupti, proton, instrumentation and ptxas-blackwell, libtriton.so stripped; made as
# docs/results/scripts/triton371/call.sh says for 3.7.1. Logs under $OUT.
# 1. two_cta_barrier.py run: a 2-CTA cluster's multicast TMA load and two-CTA barrier on the H200.
# 2. test_sonic's Hopper-path tests under 3.9 (not the compile ones: torch 2.11's inductor is not built for it).
# 3. layer.py sonic all under 3.9: the whole layer at the README's four shapes.
mkdir -p /tmp/t39 && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export OMP_NUM_THREADS=2
PYTHONPATH=/tmp/t39 python -c "import triton, torch; print('triton', triton.__version__, triton.__file__, 'torch', torch.__version__)" > $OUT/env.txt 2>&1
cat $OUT/env.txt
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 90 python docs/results/scripts/mc_proxy/two_cta_barrier.py run > $OUT/two_cta.log 2>&1; echo rc $? >> $OUT/two_cta.log
grep -v -i "warn\|leak\|nanobind\|skipped" $OUT/two_cta.log | tail -5
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 300 python -m pytest -q -n 6 --timeout=280 -p no:cacheprovider tests/test_sonic.py \
  -k "hopper and not compile" > $OUT/t39_tests.log 2>&1; echo rc $? >> $OUT/t39_tests.log
grep -E "FAILED|ERROR" $OUT/t39_tests.log | head -10; tail -3 $OUT/t39_tests.log
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 170 python docs/results/scripts/layer.py sonic all $OUT/t39_layer.json > $OUT/t39_layer.log 2>&1; echo rc $? >> $OUT/t39_layer.log
grep -v -i warn $OUT/t39_layer.log | tail -6
