#!/bin/bash
# Ran as .gpu/det/call.sh (this folder was .gpu/det/) on an H200, train.py's switch then without its line that turns
# off the NaN fill of new tensors. Logs: docs/results/determinism/call1/.
# determinism probe, then train.py h200_moe twice with --deterministic=True and once without
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout -s KILL 240 python .gpu/det/probe.py > $OUT/probe.log 2>&1; echo rc $? >> $OUT/probe.log; cat $OUT/probe.log | grep -v "^  File\|^    " | tail -20; echo "at $SECONDS s"
python data/stdlib/prepare.py > /dev/null 2>&1
A="configs/h200_moe.py --max_iters=30 --lr_decay_iters=30 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --log_interval=1 --save_checkpoints=False"
for r in det1 det2 base; do
  [ $SECONDS -lt 480 ] || break
  flag=--deterministic=True; [ $r = base ] && flag=
  timeout -s KILL 110 python train.py $A $flag --out_dir=/tmp/$r > $OUT/$r.log 2>&1; echo rc $? >> $OUT/$r.log; cp /tmp/$r/log.jsonl $OUT/$r.jsonl
  grep -E "^iter (10|20|29)|rc" $OUT/$r.log | cut -c1-120; echo "at $SECONDS s"
done
python - <<'PY'
import json, os, glob
o = os.environ['OUT']
def losses(r):
    f = glob.glob(f'{o}/{r}.jsonl')
    return [json.loads(l) for l in open(f[0])] if f else []
a, b = losses('det1'), losses('det2')
la = [x['loss'] for x in a if 'loss' in x]; lb = [x['loss'] for x in b if 'loss' in x]
print('det runs: iterations', len(la), len(lb), 'identical losses', la == lb, 'first differing', next((i for i, (u, v) in enumerate(zip(la, lb)) if u != v), None))
PY
