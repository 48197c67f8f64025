#!/bin/bash
# Run on the same warm H100 as call5.sh, right after it
# Two 40-step sonic runs of bench.py --mode=train with the GPU's SM clock, power and temperature sampled every
# 100 ms, each run's start and end beside them: does the step's rise after 10-19 steps follow the clock?
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > $OUT/smi.csv 2>&1 &
smi=$!
for t in c1 c2; do
  echo "$t start $(date '+%Y/%m/%d %H:%M:%S.%N')" >> $OUT/runs.txt
  timeout 150 python bench.py --mode=train --backends=sonic --steps=40 --out_dir=/tmp/$t > /tmp/$t.log 2>&1
  echo "$t rc $? end $(date '+%Y/%m/%d %H:%M:%S.%N')" >> $OUT/runs.txt
  grep "ms/step" /tmp/$t.log >> $OUT/runs.txt
  python -c "import json; [print('$t', r['backend'], r['step_ms_each']) for r in json.load(open('/tmp/$t/train.json'))['results']]" >> $OUT/runs.txt
done
kill $smi; cat $OUT/runs.txt
