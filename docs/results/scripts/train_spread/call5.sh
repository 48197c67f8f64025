#!/bin/bash
# bench.py --mode=train, asked of an H200 and run on an H100: the Open section's command three times, then two
# 40-step sonic runs with the GPU's clock sampled every 100 ms (smi.csv and times.txt did not come back: a call returns
# at most 8 files; call6.sh samples the clock again)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
run() {  # $1 tag, $2 backends, $3 steps
  echo "$1 start $(date +%s.%N)" >> $OUT/times.txt
  timeout 150 python bench.py --mode=train --backends=$2 --steps=$3 --out_dir=/tmp/$1 > $OUT/$1.log 2>&1
  echo "rc $? at $SECONDS s" >> $OUT/$1.log; echo "$1 end $(date +%s.%N)" >> $OUT/times.txt
  grep -E "ms/step|rc " $OUT/$1.log
  python -c "import json; [print('$1', r['backend'], r['step_ms_each']) for r in json.load(open('/tmp/$1/train.json'))['results']]" | tee -a $OUT/each.txt
}
run b1 sonic,grouped_mm 20; run b2 sonic,grouped_mm 20; run b3 sonic,grouped_mm 20
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 100 > $OUT/smi.csv 2>&1 &
smi=$!
run s1 sonic 40; run s2 sonic 40
kill $smi
timeout 150 python -m pytest -q tests/test_bench.py -k test_train > $OUT/pytest.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/pytest.log; tail -3 $OUT/pytest.log
