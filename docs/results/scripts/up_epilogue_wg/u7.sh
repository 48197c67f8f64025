#!/bin/bash
# the whole layer in bf16 against float64 with the Hopper up-projection on (the default), and determinism
export PYTHONPATH=$PWD
timeout -s KILL 135 python -m pytest -v -x tests/test_sonic.py -k "test_deterministic or (dtype1 and (sonic_matches_references or all_tokens_on_one or variable_experts))" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc " $OUT/t_layer.log | tail -14
