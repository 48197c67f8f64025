#!/bin/bash
# The GPU tests that touch token rounding and the router, on the tree with token rounding on the router's kernels
# (abtest_rr/, its own tests): bf16 and the compiled paths where the CPU runs the interpreter in fp32.
cd abtest_rr
timeout -s KILL ${1:-150} python -m pytest -q tests/test_router.py tests/test_sonic.py tests/test_bench.py tests/test_model.py \
  -k "round or router or scores or whole_module or layer_topk or host_sync or fullgraph" > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; tail -n 3 $OUT/gpu_tests.log
