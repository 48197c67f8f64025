#!/bin/bash
export PYTHONPATH=$PWD
T=tests/test_sonic.py
timeout -s KILL 215 python -m pytest -v -p no:cacheprovider --durations=0 "$T::test_tma_loads_match_pointer_loads[dtype1]" \
  "$T::test_grouped_mm_any_number_of_programs" "$T::test_no_host_sync" "$T::test_deterministic" \
  "$T::test_torch_compile_fullgraph" "$T::test_memory_contract" "$T::test_tma_loads_match_pointer_loads[dtype0]" \
  > $OUT/gpu_tests2.log 2>&1; echo "rc $?" >> $OUT/gpu_tests2.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc |Error|s call" $OUT/gpu_tests2.log | tail -40
