"""Which kernel breaks the CUDA-graph capture of the whole sonic layer at 1.4B 256/128/8? One config a
process (a failed capture leaves a sticky CUDA error): argv[1] names Hopper paths to turn off."""
import sys, time, statistics, torch
import sonic_kernels as sk
from moe import MoE
from model import GPTConfig
off = [a for a in sys.argv[1].split(',') if a] if len(sys.argv) > 1 else []
for name in off:
    setattr(sk, name, False)
T, d, n, E, K = 40960, 768, 256, 128, 8
torch.manual_seed(0)
cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
moe = MoE(cfg).cuda().to(torch.bfloat16).train()
x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
dout = torch.randn_like(x)
params = list(moe.parameters())
class Both(torch.nn.Module):
    def __init__(self, m):
        super().__init__(); self.m = m
    def forward(self, x):
        return self.m(x), self.m.aux_loss
both = Both(moe)
def fb(f):
    out, aux = f(x)
    torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)])
    return out, aux
for _ in range(2):
    fb(both)
torch.cuda.synchronize()
x.grad = None
for p in params: p.grad = None
out0, aux0 = (t.detach() for t in fb(both)); torch.cuda.synchronize()
g0 = [x.grad.clone()] + [p.grad.clone() for p in params]
x.grad = None
for p in params: p.grad = None
moe.aux_loss = None
try:
    g = torch.cuda.make_graphed_callables(both, (x,), num_warmup_iters=3)
    out1, aux1 = (t.detach().clone() for t in fb(g)); torch.cuda.synchronize()
    same = torch.equal(out0, out1) and torch.equal(aux0, aux1) and all(
        torch.equal(a, b) for a, b in zip(g0, [x.grad] + [p.grad for p in params]))
    print(f"off={off}: captured, bitwise equal {same}", flush=True)
except Exception as e:
    print(f"off={off}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
