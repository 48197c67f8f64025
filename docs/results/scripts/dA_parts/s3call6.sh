#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 60 python -m pytest -q -x tests/test_sonic.py -k "hopper_down_bwd" > $OUT/t_hopper.log 2>&1; echo "rc $?" >> $OUT/t_hopper.log
tail -n 2 $OUT/t_hopper.log
timeout -s KILL 90 python .gpu/sigcmp2.py > $OUT/sigcmp2.log 2>&1; echo "rc $?" >> $OUT/sigcmp2.log
cat $OUT/sigcmp2.log
timeout -s KILL 80 python -m pytest -q tests/test_sonic.py -k "dtype1 and (sonic_matches_references or all_tokens_on_one or variable_experts)" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
tail -n 2 $OUT/t_layer.log
