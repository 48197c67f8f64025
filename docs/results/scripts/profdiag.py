import torch, sys
from torch.profiler import profile, ProfilerActivity
from model import GPT, GPTConfig
cfg = GPTConfig(block_size=64, vocab_size=256, n_layer=2, n_head=2, n_embd=64, n_expert=4, top_k=2, expert_size=32, moe_backend="sonic")
m = GPT(cfg).cuda(); opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cuda"); print(type(opt).__name__)
x = torch.randint(256, (2, 64), device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, l = m(x, x)
    l.backward(); opt.step(); opt.zero_grad(set_to_none=True)
step(); step(); torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    step(); torch.cuda.synchronize()
ev = prof.events()
for e in ev:
    if e.device_type.name == "CPU":
        ks = [k.name for k in e.kernels]
        if any("adamw" in k for k in ks):
            chain = []; p = e
            while p is not None: chain.append(p.name); p = p.cpu_parent
            print("CPU", e.name, "async", e.is_async, "kernels", ks[:2], "chain", chain[:4])
n = sum(1 for e in ev if e.device_type.name == "CUDA" and "adamw" in e.name)
print("adamw CUDA events", n)
names = {e.name for e in ev if e.device_type.name == "CPU" and ("aunch" in e.name)}
print("launch-like CPU events", names)
