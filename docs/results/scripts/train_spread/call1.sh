#!/bin/bash
# bench.py --mode=train with its steps' spread: three processes in a row, eager
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for i in 1 2 3; do
  timeout 150 python bench.py --mode=train --backends=sonic,grouped_mm --steps=20 --out_dir=/tmp/b$i > $OUT/eager$i.log 2>&1
  echo "rc $? at $SECONDS s" >> $OUT/eager$i.log; grep -E "ms/step|rc " $OUT/eager$i.log
  cp /tmp/b$i/train.json $OUT/train$i.json 2>/dev/null
done
timeout 120 python -m pytest -q tests/test_bench.py -k test_train > $OUT/pytest.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/pytest.log; tail -3 $OUT/pytest.log
