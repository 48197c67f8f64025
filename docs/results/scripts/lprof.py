"""Kernel table of one whole-layer fwd+bwd (MoE module, router included) at a paper shape."""
import sys, torch
from collections import defaultdict
from moe import MoE
from model import GPTConfig
shapes = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8)}
for name in sys.argv[1].split(","):
    T, d, n, E, K = shapes[name]
    cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
    moe = MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn_like(x)
    def fb():
        out = moe(x)
        torch.autograd.backward([out, moe.aux_loss], [dout, torch.ones_like(moe.aux_loss)])
    for _ in range(3): fb()
    torch.cuda.synchronize()
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5): fb()
        torch.cuda.synchronize()
    tot = defaultdict(float); cnt = defaultdict(int)
    for e in prof.events():
        if e.device_type.name == "CUDA":
            tot[e.name] += e.device_time_total; cnt[e.name] += 1
    print(f"{name}: kernel time per fwd+bwd {sum(tot.values())/5:.0f} us")
    for k, t in sorted(tot.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {t/5:8.1f} us {cnt[k]//5:3d}x {k[:110]}")
