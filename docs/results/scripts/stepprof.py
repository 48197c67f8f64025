"""h200_moe's compiled training step as train.py runs it (bf16 autocast, clip folded into the fused
AdamW): ms/step, peak memory; --profile: kernels by time and the GPU's idle share."""
import sys, os, time, argparse, torch
sys.path.insert(0, os.path.dirname(__file__)); sys.path.insert(0, os.getcwd())
from collections import defaultdict
from model import GPT, GPTConfig, clipped_fused_step
ap = argparse.ArgumentParser(); ap.add_argument("--mode", default="default")
ap.add_argument("--profile", action="store_true"); ap.add_argument("--steps", type=int, default=20); a = ap.parse_args()
torch.manual_seed(0)
cfg = GPTConfig(block_size=2048, vocab_size=256, n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8,
                expert_size=256, moe_backend="sonic")
raw = GPT(cfg).cuda()
opt = raw.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cuda")
params = list(raw.parameters())
net = torch.compile(raw, mode=None if a.mode == "default" else a.mode)
B = 8
data = torch.randint(256, (64, B, 2049), device="cuda")
it = [0]
def step():
    xy = data[it[0] % 64]; it[0] += 1
    X, Y = xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = net(X, Y)
    loss.backward()
    clipped_fused_step(opt, 1.0, params=params)
    opt.zero_grad(set_to_none=True)
    return loss
t0 = time.time()
for _ in range(8): l = step()
torch.cuda.synchronize(); print(f"warmup 8 steps {time.time()-t0:.1f} s, loss {l.item():.4f}", flush=True)
ts = []
for _ in range(a.steps):
    torch.cuda.synchronize(); t0 = time.perf_counter(); step(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t0)
torch.cuda.synchronize(); t0 = time.perf_counter()
for _ in range(a.steps): step()
torch.cuda.synchronize(); dt = (time.perf_counter() - t0) / a.steps
ts.sort()
print(f"opt={type(opt).__name__} mode={a.mode}: {dt*1e3:.2f} ms/step back to back; synced steps median {ts[len(ts)//2]*1e3:.2f} min {ts[0]*1e3:.2f}; "
      f"peak {torch.cuda.max_memory_allocated()/2**30:.1f} GiB", flush=True)
if a.profile:
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        torch.cuda.synchronize(); w0 = time.perf_counter()
        for _ in range(3): step()
        torch.cuda.synchronize(); wall = (time.perf_counter() - w0) / 3
    tot = defaultdict(float); cnt = defaultdict(int); iv = []
    for e in prof.events():
        if e.device_type.name == "CUDA":
            tot[e.name] += e.device_time_total; cnt[e.name] += 1
            iv.append((e.time_range.start, e.time_range.end))
    iv.sort(); busy = 0; cur = None
    for s, e in iv:
        if cur is None or s > cur[1]:
            if cur: busy += cur[1] - cur[0]
            cur = [s, e]
        else: cur[1] = max(cur[1], e)
    busy += cur[1] - cur[0]
    span = iv[-1][1] - iv[0][0]
    print(f"profiled wall {wall*1e3:.1f} ms/step; kernels busy {busy/3/1e3:.1f} ms/step (overlaps once) over a span of {span/3/1e3:.1f}")
    for name, t in sorted(tot.items(), key=lambda kv: -kv[1])[:40]:
        print(f"{t/3/1e3:8.2f} ms {cnt[name]//3:5d}x  {name[:140]}")
