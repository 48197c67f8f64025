#!/bin/bash
# dA' 256-column items: second probe (two configs, 3 rounds), whole-layer bf16 tests against float64, layer A/B twice
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 200 python -m pytest -q -x tests/test_sonic.py -k "hopper_down_bwd or sonic_matches_references or all_tokens_on_one or variable_experts or deterministic or every_router_runs" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
tail -n 4 $OUT/t_layer.log
timeout -s KILL 200 python .gpu/dbwide.py $OUT/dbwide.json > $OUT/dbwide.log 2>&1; echo "rc $?" >> $OUT/dbwide.log
cat $OUT/dbwide.log | tail -8
for lab in w0a wdefa w0b wdefb; do
  case $lab in w0*) export SK_DB_WIDE=0;; *) unset SK_DB_WIDE;; esac
  timeout -s KILL 75 python docs/results/scripts/layer.py $lab all $OUT/layer_$lab.json > $OUT/layer_$lab.log 2>&1; echo "rc $?" >> $OUT/layer_$lab.log
  cat $OUT/layer_$lab.log
done
