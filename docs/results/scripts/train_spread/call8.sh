#!/bin/bash
# bench.py --mode=train now keeps each step's load (its busiest expert over the mean) beside its time: 40 sonic steps at
# the default learning rate and with the weights frozen (0), a compiled run (the load read under torch.compile too),
# then the mode's test
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for t in lr lr0 compiled; do
  case $t in lr) a="--learning_rate=6e-4";; lr0) a="--learning_rate=0";; compiled) a="--compile=True --steps=10";; esac
  timeout 240 python bench.py --mode=train --backends=sonic --steps=40 $a --out_dir=/tmp/$t > /tmp/$t.log 2>&1
  echo "$t $a rc $?" >> $OUT/runs.txt; grep "ms/step" /tmp/$t.log >> $OUT/runs.txt
  python -c "
import json
for r in json.load(open('/tmp/$t/train.json'))['results']:
    print('$t', r['backend'], 'ms', r['step_ms_each'])
    print('$t', r['backend'], 'load', r['load_max_over_mean_each'])" >> $OUT/runs.txt
done
timeout 150 python -m pytest -q tests/test_bench.py -k test_train > $OUT/pytest.log 2>&1
echo "rc $?" >> $OUT/pytest.log
cat $OUT/runs.txt; tail -2 $OUT/pytest.log
