#!/bin/bash
# Ran as .gpu/det/call2.sh (this folder was .gpu/det/) on an H200, train.py's switch as landed (no NaN fill).
# Logs: docs/results/determinism/call2/.
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name --format=csv,noheader
timeout -s KILL 150 python .gpu/det/parts.py > $OUT/parts.log 2>&1; echo rc $? >> $OUT/parts.log; grep -v "^  File\|^    " $OUT/parts.log | tail -22; echo "at $SECONDS s"
python data/stdlib/prepare.py > /dev/null 2>&1
A="configs/h200_moe.py --max_iters=30 --lr_decay_iters=30 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --log_interval=1 --save_checkpoints=False"
for r in nf1 nf2 base; do
  [ $SECONDS -lt 450 ] || break
  flag=--deterministic=True; [ $r = base ] && flag=
  timeout -s KILL 110 python train.py $A $flag --out_dir=/tmp/$r > $OUT/$r.log 2>&1; echo rc $? >> $OUT/$r.log; cp /tmp/$r/log.jsonl $OUT/$r.jsonl
  grep -E "^iter (10|20|29)|rc" $OUT/$r.log | cut -c1-120; echo "at $SECONDS s"
done
python - <<'PY'
import json, os
o = os.environ['OUT']
L = lambda r: [json.loads(l)['loss'] for l in open(f'{o}/{r}.jsonl') if '"loss"' in l]
a, b = L('nf1'), L('nf2')
print('det runs (no fill): iterations', len(a), len(b), 'identical losses', a == b)
PY
