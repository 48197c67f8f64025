#!/bin/bash
# the Hopper up-projection: GPU tests, probe (float64, equality, timings beside the Triton kernel and cuBLAS),
# whole layer A/B; then the last CPU-only changes: bench profile (clip + copies) and h200_moe end to end
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout -s KILL 150 python -m pytest -q -x tests/test_sonic.py -k "hopper_up" > $OUT/t_up.log 2>&1; echo "rc $?" >> $OUT/t_up.log
tail -n 15 $OUT/t_up.log
timeout -s KILL 200 python .gpu/upprobe.py $OUT/up.json > $OUT/up.log 2>&1; echo "rc $?" >> $OUT/up.log
cat $OUT/up.log | tail -60
for lab in triton hopper; do
  if [[ $lab == triton* ]]; then export SK_HOPPER_UP=0; else unset SK_HOPPER_UP; fi
  timeout -s KILL 70 python docs/results/scripts/layer.py $lab all $OUT/layer_$lab.json > $OUT/layer_$lab.log 2>&1; echo "rc $?" >> $OUT/layer_$lab.log
  cat $OUT/layer_$lab.log
done
unset SK_HOPPER_UP
