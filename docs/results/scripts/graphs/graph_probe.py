"""The whole MoE module's fwd+bwd, eager against one CUDA graph of its forward and one of its backward
(torch.cuda.make_graphed_callables), at 1.4B, 7B and h200_moe's layer: GPU time per call (do_bench), the
host's enqueue time of one call, and whether the graphed outputs and gradients equal the eager ones."""
import time, statistics, sys
import torch
from triton.testing import do_bench
from moe import MoE
from model import GPTConfig
shapes = [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8), ("h200_moe", 16384, 1536, 256, 128, 8)]
class Both(torch.nn.Module):
    def __init__(self, moe):
        super().__init__(); self.moe = moe
    def forward(self, x):
        return self.moe(x), self.moe.aux_loss
for name, T, d, n, E, K in shapes:
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
    moe = MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn_like(x)
    params = list(moe.parameters())
    both = Both(moe)
    def fb_eager():
        out, aux = both(x)
        torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)])
        return out, aux
    def timed(label, fn):
        ms = do_bench(fn, warmup=10, rep=100, grad_to_none=[x] + params)
        hs = []
        for _ in range(15):
            torch.cuda.synchronize(); t0 = time.perf_counter(); fn(); hs.append((time.perf_counter() - t0) * 1e3)
            x.grad = None
            for p in params: p.grad = None
        torch.cuda.synchronize()
        fl = 18 * T * K * n * d
        print(f"{name} {label:7s}: fwd+bwd {ms:.3f} ms ({fl / ms / 1e9:.0f} TFLOPS), host enqueue {statistics.median(hs):.2f} ms",
              flush=True)
    fb_eager(); timed("eager", fb_eager); timed("eager", fb_eager)
    x.grad = None
    for p in params: p.grad = None
    out0, aux0 = fb_eager(); torch.cuda.synchronize()
    g0 = [x.grad.clone()] + [p.grad.clone() for p in params]
    x.grad = None
    for p in params: p.grad = None
    out0 = out0.detach()   # an eager graph kept alive holds x's AccumulateGrad node, which breaks the capture
    aux0 = aux0.detach(); moe.aux_loss = None
    try:
        graphed = torch.cuda.make_graphed_callables(both, (x,), num_warmup_iters=3)
    except Exception as e:
        print(f"{name}: make_graphed_callables failed: {type(e).__name__}: {str(e)[:300]}", flush=True); continue
    x.grad = None
    for p in params: p.grad = None
    def fb_graph():
        out, aux = graphed(x)
        torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)])
        return out, aux
    out1, aux1 = (t.detach().clone() for t in fb_graph()); torch.cuda.synchronize()
    g1 = [x.grad.clone()] + [p.grad.clone() for p in params]
    same = torch.equal(out0, out1) and torch.equal(aux0, aux1) and all(torch.equal(a, b) for a, b in zip(g0, g1))
    print(f"{name}: graphed output, aux loss and gradients bitwise equal to eager: {same}", flush=True)
    # make_graphed_callables replaced both.forward: from here on every call replays the graphs
    timed("graphed", fb_graph); timed("graphed", fb_graph)
    del moe, x, dout, params, both, graphed
    torch.cuda.empty_cache()
