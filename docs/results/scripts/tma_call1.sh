#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >> $OUT/env.txt
timeout 400 python docs/results/scripts/kprobe.py 1.4B,h200,30B,120B,7B $OUT/kprobe.json > $OUT/kprobe.log 2>&1; echo "rc $?" >> $OUT/kprobe.log
for m in 0 1; do SK_TMA=$m timeout 80 python docs/results/scripts/layer.py tma$m 1.4B,7B $OUT/layer_tma$m.json >> $OUT/layer.log 2>&1; echo "rc $m $?" >> $OUT/layer.log; done
cat $OUT/kprobe.log $OUT/layer.log | tail -120
