"""Kernel-level profile of h200_moe's training step (compiled or eager): top CUDA kernels per step."""
import sys, time, torch
from collections import defaultdict
from model import GPT, GPTConfig
use_compile = sys.argv[1] == "compile"
torch.manual_seed(0)
cfg = GPTConfig(block_size=2048, vocab_size=256, n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8,
                expert_size=256, moe_backend="sonic")
raw = GPT(cfg).cuda()
opt = raw.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cuda")
net = torch.compile(raw) if use_compile else raw
B = 8
def step():
    xy = torch.randint(256, (B, 2049), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = net(xy[:, :-1].contiguous(), xy[:, 1:].contiguous())
    loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
for _ in range(8): step()
torch.cuda.synchronize(); t0 = time.perf_counter()
for _ in range(10): step()
torch.cuda.synchronize(); dt = (time.perf_counter() - t0) / 10
print(f"{sys.argv[1]}: {dt*1e3:.1f} ms/step unprofiled", flush=True)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
    for _ in range(3): step()
    torch.cuda.synchronize()
tot = defaultdict(float); cnt = defaultdict(int)
for e in prof.events():
    if e.device_type.name == "CUDA":
        tot[e.name] += e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
        cnt[e.name] += 1
allk = sum(tot.values()) / 3 / 1e3
print(f"kernel time per step {allk:.1f} ms")
for name, t in sorted(tot.items(), key=lambda kv: -kv[1])[:45]:
    print(f"{t/3/1e3:8.2f} ms {cnt[name]//3:5d}x  {name[:150]}")
