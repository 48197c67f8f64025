#!/bin/bash
# bench.py --mode=train with the first mark unsynced after the burn-in: every step in order
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
run() {  # $1 tag, $2 backends, $3 steps
  timeout 150 python bench.py --mode=train --backends=$2 --steps=$3 --out_dir=/tmp/$1 > $OUT/$1.log 2>&1
  echo "rc $? at $SECONDS s" >> $OUT/$1.log; grep -E "ms/step|rc " $OUT/$1.log
  python -c "import json; [print('$1', r['backend'], r['step_ms_each']) for r in json.load(open('/tmp/$1/train.json'))['results']]" | tee -a $OUT/each.txt
}
run s1 sonic 40; run s2 sonic 40; run both sonic,grouped_mm 20
timeout 120 python -m pytest -q tests/test_bench.py -k test_train > $OUT/pytest.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/pytest.log; tail -3 $OUT/pytest.log
