#!/bin/bash
# dA' epilogue with the h ring: GPU tests, the kernel before/after, the whole layer before/after (alternated)
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > $OUT/env.txt
timeout -s KILL 150 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd" > $OUT/pytest_db.log 2>&1; echo "rc $?" >> $OUT/pytest_db.log
tail -3 $OUT/pytest_db.log
timeout -s KILL 120 python .gpu/dbcmp.py > $OUT/dbcmp.log 2>&1; echo "rc $?" >> $OUT/dbcmp.log
cat $OUT/dbcmp.log | grep -v Warn | tail -6
for i in 1 2; do
  PYTHONPATH=.gpu/old:$PWD timeout -s KILL 100 python docs/results/scripts/layer.py before all $OUT/before_$i.json > $OUT/layer_before_$i.log 2>&1
  timeout -s KILL 100 python docs/results/scripts/layer.py after all $OUT/after_$i.json > $OUT/layer_after_$i.log 2>&1
  grep -h "TFLOPS" $OUT/layer_before_$i.log $OUT/layer_after_$i.log
done
