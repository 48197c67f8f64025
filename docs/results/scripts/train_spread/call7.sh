#!/bin/bash
# Is the train mode's rise after ~10 timed steps the training itself (the router's choices moving with the
# weights, so the experts' loads and the kernels' tiles change)? 40 sonic steps with the weights frozen
# (--learning_rate=0) against the default learning rate, alternated, two runs each
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for t in lr0_a lr_a lr0_b lr_b; do
  case $t in lr0*) lr=0;; *) lr=6e-4;; esac
  timeout 150 python bench.py --mode=train --backends=sonic --steps=40 --learning_rate=$lr --out_dir=/tmp/$t \
    > /tmp/$t.log 2>&1
  echo "$t lr=$lr rc $?" >> $OUT/runs.txt; grep "ms/step" /tmp/$t.log >> $OUT/runs.txt
  python -c "import json; [print('$t', r['backend'], r['step_ms_each']) for r in json.load(open('/tmp/$t/train.json'))['results']]" >> $OUT/runs.txt
done
cat $OUT/runs.txt
