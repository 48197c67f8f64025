#!/bin/bash
# Token rounding against top-K as the README's figure was measured (2026-11-29): the train mode's GPT at d = 1536, E = 128,
# batch 8 x 2048, random tokens, eager; then the TF32 A/B of tf32/call1.sh again for grouped_mm, the order reversed.
export PYTHONPATH=$PWD
timeout -s KILL 130 python bench.py --mode=train --backends=sonic --n_embd=1536 --n_expert=128 --batch_size=8 \
  --block_size=2048 --routing=both --steps=20 --out_dir=/tmp/rr > $OUT/train_random.log 2>&1; echo "rc $?" >> $OUT/train_random.log
grep -E "ms/step|rc " $OUT/train_random.log | tail -n 4
sed 's/matmul.allow_tf32 = True/matmul.allow_tf32 = False/' bench.py > bench_notf32.py
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4,24576x1536:128/256/16
for v in bench_notf32 bench; do
  timeout -s KILL 75 python $v.py --mode=layer --shapes=$S --backends=grouped_mm --check=False \
    --out_dir=/tmp/$v > $OUT/$v.log 2>&1; echo "rc $?" >> $OUT/$v.log
  python -c "
import json
d = json.load(open('/tmp/$v/layer.json'))
for r in d['results']:
    p = r['layer']
    print('$v', d.get('tf32'), r['label'], r['backend'], 'layer f+b ms', round(p.get('both_ms', -1), 3))" | tee -a $OUT/each.txt
done
