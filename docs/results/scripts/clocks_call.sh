#!/bin/bash
# From the repository root: the GPU's SM clock, power and throttle reasons sampled every 100 ms while
# layer.py runs its four shapes twice and bench.py times 120B 2048/64/4 (whether the long fwd+bwd
# calls run at a lower clock than their parts timed apart), with the allocator's segment count and
# cudaMalloc calls of 120B's fwd+bwd before and after its timing
export PYTHONPATH=$PWD
Q=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu   # the throttle reasons' field has two names by driver
nvidia-smi --query-gpu=$Q,clocks_event_reasons.active --format=csv -c 1 > /dev/null 2>&1 \
  && Q=$Q,clocks_event_reasons.active || Q=$Q,clocks_throttle_reasons.active
nvidia-smi --query-gpu=$Q --format=csv -lms 100 > $OUT/smi.csv 2>&1 &
smi=$!
for r in 1 2; do
  echo "== layer.py pass $r $(date +%T.%N)" >> $OUT/marks.log
  timeout -s KILL 150 python docs/results/scripts/layer.py sonic all $OUT/layer$r.json > $OUT/layer$r.log 2>&1
done
echo "== bench 120B $(date +%T.%N)" >> $OUT/marks.log
timeout -s KILL 100 python bench.py --backends=sonic --warmup=10 --rep=40 --check=False --shapes=32768x4096:2048/64/4 \
  --out_dir=$OUT/bench > $OUT/bench.log 2>&1
echo "== allocator $(date +%T.%N)" >> $OUT/marks.log
timeout -s KILL 100 python - > $OUT/alloc.log 2>&1 <<'PY'
import torch
from moe import MoE
from model import GPTConfig
cfg = GPTConfig(n_embd=4096, n_head=8, n_expert=64, top_k=4, expert_size=2048, moe_backend="sonic")
m = MoE(cfg).cuda().to(torch.bfloat16).train()
x = torch.randn(32768, 4096, device="cuda", dtype=torch.bfloat16, requires_grad=True)
dout = torch.randn_like(x)
def fb():
    out = m(x); torch.autograd.backward([out, m.aux_loss], [dout, torch.ones_like(m.aux_loss)])
    x.grad = None
    for p in m.parameters(): p.grad = None
keys = ("num_device_alloc", "num_device_free", "segment.all.current", "num_alloc_retries")
for i in range(8):
    fb(); torch.cuda.synchronize()
    st = torch.cuda.memory_stats()
    print(i, {k: st.get(k) for k in keys}, flush=True)
PY
echo "== end $(date +%T.%N)" >> $OUT/marks.log
kill $smi
cat $OUT/marks.log; grep -h sonic $OUT/layer1.log $OUT/layer2.log; grep -A2 "^whole MoE" $OUT/bench.log | tail -1; cat $OUT/alloc.log | grep -v Warn
python - "$OUT" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1] + "/smi.csv")))[1:]
sm = [float(r[1].split()[0]) for r in rows if len(r) > 3 and r[1].strip().split()[0].isdigit()]
pw = [float(r[3].split()[0]) for r in rows if len(r) > 3 and r[3].strip().split()[0].replace('.', '').isdigit()]
print(f"{len(sm)} samples: SM clock min {min(sm):.0f} median {sorted(sm)[len(sm)//2]:.0f} max {max(sm):.0f} MHz; "
      f"power max {max(pw):.0f} W")
PY
