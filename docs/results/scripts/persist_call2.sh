#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
timeout 120 python docs/results/scripts/hostprof.py > $OUT/hostprof.log 2>&1; echo "rc $?" >> $OUT/hostprof.log
head -5 $OUT/hostprof.log; grep "host per call" $OUT/hostprof.log
timeout 200 python docs/results/scripts/grouped_configs.py 1.4B,7B,30B,120B $OUT/gprobe.json > $OUT/gprobe.log 2>&1; echo "rc $?" >> $OUT/gprobe.log; cat $OUT/gprobe.log
i=0; for v in new old new; do i=$((i+1))
  if [ $v = old ]; then PP=$PWD/.gpu/old:$PWD; else PP=$PWD; fi
  PYTHONPATH=$PP timeout 100 python docs/results/scripts/layer.py $v all $OUT/layer_$v$i.json >> $OUT/layer.log 2>&1; echo "rc $v $?" >> $OUT/layer.log
done
cat $OUT/layer.log
