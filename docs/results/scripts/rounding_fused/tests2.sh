#!/bin/bash
# The rest of tests.sh's GPU tests that its 150 s limit cut (it ended in test_sonic.py, after test_router.py passed):
# the selection, the compiled graph and the host syncs under rounding, and bench's layer check, on abtest_rr/.
cd abtest_rr && timeout -s KILL 165 python -m pytest -q -rA tests/test_sonic.py tests/test_bench.py -k "fullgraph or host_sync or layer_topk_and_rounding or round_select_matches" > $OUT/gpu_tests2.log 2>&1; echo "rc $?" >> $OUT/gpu_tests2.log; grep -E "PASSED|FAILED|ERROR|rc |passed|failed" $OUT/gpu_tests2.log | tail -25
