#!/bin/bash
export PYTHONPATH=$PWD
S=tests/test_sonic.py
timeout 280 python -m pytest -v -p no:cacheprovider --durations=0 $S::test_tma_loads_match_pointer_loads $S::test_int64_offsets \
  "$S::test_sonic_matches_references[dtype1-0.01-1000-256-128-16-4]" "$S::test_sonic_matches_references[dtype1-0.01-2049-512-256-32-8]" \
  $S::test_no_host_sync $S::test_deterministic $S::test_down_bwd_kernel_variants > $OUT/gpu_tests_tma.log 2>&1; echo "rc $?" >> $OUT/gpu_tests_tma.log
grep -E "PASS|FAIL|ERROR|passed|failed|rc |s call" $OUT/gpu_tests_tma.log | head -40
