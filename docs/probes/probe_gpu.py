# GPU probe kept for docs/PERF.md: quick timing of sonic vs grouped_mm on a few shapes
# run from the repo root: python docs/probes/probe_gpu.py  (imports the repo's sonic_kernels)
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import sys, time, torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
from model import EXPERT_BACKENDS
torch.manual_seed(0)
shapes = [(24576,1536,256,128,8),(24576,1536,1024,32,2),(40960,768,256,128,8),(32768,4096,512,128,8)]
if len(sys.argv) > 1: shapes = shapes[:int(sys.argv[1])]
for T,d,n,E,K in shapes:
    x = torch.randn(T,d,device='cuda',dtype=torch.bfloat16,requires_grad=True)
    w1 = (torch.randn(E,d,2*n,device='cuda')/d**0.5).bfloat16().requires_grad_()
    w2 = (torch.randn(E,n,d,device='cuda')/n**0.5).bfloat16().requires_grad_()
    logits = torch.randn(T,E,device='cuda')
    top, idx = torch.topk(logits,K); s = torch.softmax(top,-1).flatten().requires_grad_()
    pt = torch.arange(T,device='cuda').repeat_interleave(K); pe = idx.flatten()
    fl = 6*T*K*n*d
    row = f"T={T} d={d} n={n} E={E} K={K}:"
    outs = {}
    g = torch.randn(T,d,device='cuda',dtype=torch.bfloat16)
    for name in ["torch","sonic","grouped_mm"]:
        fn = EXPERT_BACKENDS[name]
        try:
            out = fn(x,w1,w2,pt,pe,s)
            grads = torch.autograd.grad(out,(x,w1,w2,s),g, retain_graph=True)
            outs[name] = [out]+list(grads)
            if name == "torch": continue
            tf = do_bench(lambda: fn(x,w1,w2,pt,pe,s), warmup=25, rep=100)
            tb = do_bench(lambda: torch.autograd.grad(out,(x,w1,w2,s),g,retain_graph=True), warmup=25, rep=100)
            torch.cuda.synchronize(); m0 = torch.cuda.memory_allocated()
            o2 = fn(x,w1,w2,pt,pe,s); m1 = torch.cuda.memory_allocated(); del o2
            row += f"  {name}: fwd {tf:.3f}ms {fl/tf/1e9:.0f}TF bwd {tb:.3f}ms {2*fl/tb/1e9:.0f}TF mem {(m1-m0)/2**20:.0f}MiB |"
        except Exception as ex:
            row += f"  {name}: ERR {ex!r:.200}"
    for nm in ["sonic","grouped_mm"]:
      if nm in outs and "torch" in outs:
        rels = [((a.float()-b.float()).norm()/b.float().norm()).item() for a,b in zip(outs[nm],outs['torch'])]
        row += f" rel[{nm} vs torch] " + " ".join(f"{r:.1e}" for r in rels)
    print(row, flush=True)
    for k in list(_k for _k in [getattr(sk, n_) for n_ in dir(sk) if n_.endswith('_kernel')] if hasattr(_k,'best_config')):
        print("  ", k.fn.__name__ if hasattr(k,'fn') else k, k.best_config)
    del x,w1,w2,outs; torch.cuda.empty_cache()

# kernel breakdown of sonic fwd+bwd at the first shape
T,d,n,E,K = shapes[0]
x = torch.randn(T,d,device='cuda',dtype=torch.bfloat16,requires_grad=True)
w1 = (torch.randn(E,d,2*n,device='cuda')/d**0.5).bfloat16().requires_grad_()
w2 = (torch.randn(E,n,d,device='cuda')/n**0.5).bfloat16().requires_grad_()
logits = torch.randn(T,E,device='cuda')
top, idx = torch.topk(logits,K); s = torch.softmax(top,-1).flatten().requires_grad_()
pt = torch.arange(T,device='cuda').repeat_interleave(K); pe = idx.flatten()
g = torch.randn(T,d,device='cuda',dtype=torch.bfloat16)
for _ in range(3):
    out = sk.moe_experts(x,w1,w2,pt,pe,s); torch.autograd.grad(out,(x,w1,w2,s),g)
torch.cuda.synchronize()
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        out = sk.moe_experts(x,w1,w2,pt,pe,s); torch.autograd.grad(out,(x,w1,w2,s),g)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=60))
