#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >> $OUT/env.txt
timeout 300 python docs/results/scripts/persist_probe.py 1.4B,7B,30B,120B $OUT/pprobe.json > $OUT/pprobe.log 2>&1; echo "rc $?" >> $OUT/pprobe.log
cat $OUT/pprobe.log
for v in new old; do
  if [ $v = old ]; then PP=$PWD/.gpu/old:$PWD; else PP=$PWD; fi
  PYTHONPATH=$PP timeout 100 python docs/results/scripts/layer.py $v all $OUT/layer_$v.json >> $OUT/layer.log 2>&1; echo "rc $v $?" >> $OUT/layer.log
done
cat $OUT/layer.log
