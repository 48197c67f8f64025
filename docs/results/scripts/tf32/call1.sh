#!/bin/bash
# bench.py with TF32 on for fp32 matmuls, as train.py (the tree), against the same bench.py with it off (as
# before): the whole layer of grouped_mm (and sonic's with the flag on) at the README's four shapes and the sweep's
# finest (128/256/16). Only the fp32 router logits of grouped_mm and torch (and token rounding's) read the flag.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
sed 's/matmul.allow_tf32 = True/matmul.allow_tf32 = False/' bench.py > bench_notf32.py
grep -c "allow_tf32 = False" bench_notf32.py
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4,24576x1536:128/256/16
for v in bench bench_notf32; do  # sonic in the first only: its router does not read the flag
  b=$([ $v = bench ] && echo sonic,grouped_mm || echo grouped_mm)
  timeout -s KILL 190 python $v.py --mode=layer --shapes=$S --backends=$b --check=False \
    --out_dir=/tmp/$v > $OUT/$v.log 2>&1; echo "rc $?" >> $OUT/$v.log
  python -c "
import json
d = json.load(open('/tmp/$v/layer.json'))
print('$v tf32', d.get('tf32'))
for r in d['results']:
    p = r['layer']
    print('$v', r['label'], r['backend'], 'layer f+b ms', round(p.get('both_ms', -1), 3), 'fwd', round(p.get('fwd_ms', -1), 3))" | tee -a $OUT/each.txt
done
# the checks on a GPU, where TF32 exists: bench's fp32 check (torch and sonic rows within 1e-4 of the reference, the
# timed runs on TF32), and the fp32 router's products with the flag off
timeout -s KILL 120 python -m pytest -q tests/test_bench.py tests/test_router.py \
  -k "layer_topk_and_rounding or checks_run_without_tf32 or ignore_tf32 or logits_precision" > $OUT/tests.log 2>&1
echo "rc $?" >> $OUT/tests.log; tail -n 4 $OUT/tests.log
