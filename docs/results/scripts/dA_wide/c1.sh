#!/bin/bash
# dA' with 256-column items: GPU tests, probe (timings, float64 errors), whole layer A/B
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "hopper_down_bwd" > $OUT/t_db.log 2>&1; echo "rc $?" >> $OUT/t_db.log
tail -n 15 $OUT/t_db.log
timeout -s KILL 220 python .gpu/dbwide.py $OUT/dbwide.json > $OUT/dbwide.log 2>&1; echo "rc $?" >> $OUT/dbwide.log
cat $OUT/dbwide.log | tail -30
for lab in w0 wdef w1; do
  case $lab in w0) export SK_DB_WIDE=0;; wdef) unset SK_DB_WIDE;; w1) export SK_DB_WIDE=1;; esac
  timeout -s KILL 75 python docs/results/scripts/layer.py $lab all $OUT/layer_$lab.json > $OUT/layer_$lab.log 2>&1; echo "rc $?" >> $OUT/layer_$lab.log
  cat $OUT/layer_$lab.log
done
