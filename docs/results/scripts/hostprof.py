"""Host time of the whole MoE module's fwd+bwd at 1.4B: cProfile over 10 enqueued iterations, and
the host cost of single launches."""
import cProfile, pstats, io, time, statistics, sys
import torch, triton
from moe import MoE
from model import GPTConfig
import sonic_kernels as sk
T, d, n, E, K = 40960, 768, 256, 128, 8
torch.manual_seed(0)
cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
moe = MoE(cfg).cuda().to(torch.bfloat16).train()
x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
dout = torch.randn_like(x)
def fb():
    out = moe(x)
    torch.autograd.backward([out, moe.aux_loss], [dout, torch.ones_like(moe.aux_loss)])
    x.grad = None
    for p in moe.parameters(): p.grad = None
for _ in range(5): fb()
torch.cuda.synchronize()
def fwd_only():
    with torch.no_grad():
        moe(x)
hs = []
for _ in range(15):
    torch.cuda.synchronize(); t0 = time.perf_counter(); fb(); hs.append((time.perf_counter() - t0) * 1e3)
torch.cuda.synchronize()
print(f"host enqueue fwd+bwd median {statistics.median(hs):.2f} ms (min {min(hs):.2f})")
hs = []
for _ in range(15):
    torch.cuda.synchronize(); t0 = time.perf_counter(); out = moe(x); hs.append((time.perf_counter() - t0) * 1e3)
    del out
torch.cuda.synchronize()
print(f"host enqueue fwd median {statistics.median(hs):.2f} ms")
pr = cProfile.Profile()
torch.cuda.synchronize()
pr.enable()
for _ in range(10):
    fb()
    torch.cuda.synchronize()
pr.disable()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(45); print(s.getvalue()[:9000])
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumtime").print_stats(60); print(s.getvalue()[:12000])
# single launches: a small Triton kernel (gather_sum), the autotuned grouped_mm, and a torch op
r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), torch.randint(E, (T * K,), device="cuda"),
                        torch.rand(T * K, device="cuda"), T, E)
y = torch.randn(T * K, 64, device="cuda", dtype=torch.bfloat16)
a = torch.randn(T * K, n, device="cuda", dtype=torch.bfloat16)
w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16)
for name, fn in [("gather_sum", lambda: sk.gather_sum(y, r)), ("grouped_mm", lambda: sk.grouped_mm(a, w2, r)),
                 ("torch add", lambda: y.add(1)), ("_use_tma", lambda: sk._use_tma(a, w2)),
                 ("get_device_properties", lambda: torch.cuda.get_device_properties(a.device))]:
    fn(); torch.cuda.synchronize()
    N = 200
    t0 = time.perf_counter()
    for _ in range(N): fn()
    dt = (time.perf_counter() - t0) / N * 1e6
    torch.cuda.synchronize()
    print(f"host per call {name}: {dt:.1f} us")
