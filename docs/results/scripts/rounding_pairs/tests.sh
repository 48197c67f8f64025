#!/bin/bash
# The GPU tests that touch token rounding and the router, on this tree: bf16, and the compiled paths where the CPU
# runs the interpreter in fp32.
timeout -s KILL ${1:-200} python -m pytest -q -rf tests/test_router.py tests/test_sonic.py tests/test_bench.py \
  tests/test_model.py -k "round or scores or whole_module or host_sync or fullgraph" > $OUT/gpu_tests.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/gpu_tests.log; tail -n 5 $OUT/gpu_tests.log
