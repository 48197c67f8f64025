#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
T=tests/test_sonic.py
timeout 230 python -m pytest -v -p no:cacheprovider "$T::test_tma_loads_match_pointer_loads" "$T::test_int64_offsets" \
  "$T::test_sonic_matches_references[dtype1-0.01-1000-256-128-16-4]" "$T::test_sonic_matches_references[dtype1-0.01-2049-512-256-32-8]" \
  "$T::test_sonic_matches_references[dtype0-1e-05-300-48-32-4-2]" "$T::test_grouped_mm_any_number_of_programs" \
  "$T::test_no_host_sync" "$T::test_deterministic" "$T::test_torch_compile_fullgraph" "$T::test_memory_contract" \
  > $OUT/gpu_tests.log 2>&1; echo "rc $?" >> $OUT/gpu_tests.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc " $OUT/gpu_tests.log | tail -30
for i in 1 2; do timeout 110 python docs/results/scripts/layer.py persist all $OUT/layer_persist$i.json >> $OUT/layer.log 2>&1; echo "rc $i $?" >> $OUT/layer.log; done
cat $OUT/layer.log
