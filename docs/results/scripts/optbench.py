"""The optimizer step over h200_moe's parameters: torch's fused AdamW (+ the clip's norm) against a
Triton AdamW, per block size; a copy for the memory's speed."""
import sys, os, torch, triton
sys.path.insert(0, os.path.dirname(__file__)); sys.path.insert(0, os.getcwd())
from adamw_tri import adamw_step, _sumsq_kernel
from model import GPT, GPTConfig, clipped_fused_step
from triton.testing import do_bench
torch.manual_seed(0)
cfg = GPTConfig(block_size=2048, vocab_size=256, n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8,
                expert_size=256, moe_backend="sonic")
raw = GPT(cfg).cuda()
ps = [p for p in raw.parameters()]
N = sum(p.numel() for p in ps)
print(f"{len(ps)} tensors, {N/1e9:.3f}B params")
for p in ps: p.grad = torch.randn_like(p) * 1e-3
opt = raw.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cuda")
opt.step()
big = torch.empty(N, device="cuda"); big2 = torch.empty_like(big)
t = do_bench(lambda: big2.copy_(big), warmup=5, rep=50)
print(f"copy fp32 {N/1e9:.2f}B: {t:.2f} ms, {8*N/t/1e9:.0f} GB/s")
t = do_bench(lambda: opt.step(), warmup=3, rep=50)
print(f"torch fused AdamW step: {t:.2f} ms, {28*N/t/1e9:.0f} GB/s")
t = do_bench(lambda: clipped_fused_step(opt, 1.0, params=ps), warmup=3, rep=50)
print(f"torch clipped_fused_step (norm + step): {t:.2f} ms")
gs = [p.grad for p in ps]
t = do_bench(lambda: torch.nn.utils.get_total_norm(gs), warmup=3, rep=50)
print(f"get_total_norm: {t:.2f} ms, {4*N/t/1e9:.0f} GB/s")
ms = [opt.state[p]['exp_avg'] for p in ps]; vs = [opt.state[p]['exp_avg_sq'] for p in ps]; st = [opt.state[p]['step'] for p in ps]
groups = {id(p): g['weight_decay'] for g in opt.param_groups for p in g['params']}
scale = torch.tensor(1.5, device="cuda")
for BLOCK in (1024, 2048, 4096, 8192):
    for nw in (4, 8):
        f = lambda: adamw_step(ps, gs, ms, vs, st, 3e-4, 0.9, 0.95, 1e-8, 0.1, scale=scale, BLOCK=BLOCK, num_warps=nw)
        t = do_bench(f, warmup=3, rep=50)
        print(f"triton AdamW BLOCK={BLOCK} warps={nw}: {t:.2f} ms, {28*N/t/1e9:.0f} GB/s", flush=True)
for BLOCK, IT in ((1024, 8), (2048, 8), (4096, 4), (4096, 16)):
    def f():
        outs = []
        for g in gs:
            n = g.numel(); np_ = triton.cdiv(n, BLOCK * IT)
            o = torch.empty(np_, device="cuda"); _sumsq_kernel[(np_,)](g, o, n, BLOCK=BLOCK, ITERS=IT, num_warps=8); outs.append(o)
        return torch.cat(outs).sum().sqrt()
    t = do_bench(f, warmup=3, rep=50)
    print(f"triton sumsq BLOCK={BLOCK} ITERS={IT}: {t:.2f} ms, {4*N/t/1e9:.0f} GB/s; norm {f().item():.6f} vs {torch.nn.utils.get_total_norm(gs).item():.6f}", flush=True)
# agreement with torch's fused step from one state
p_keep = [p.detach().clone() for p in ps]; m_keep = [m.clone() for m in ms]; v_keep = [v.clone() for v in vs]; s_keep = [s.clone() for s in st]
opt.step()
pt = [p.detach().clone() for p in ps]
with torch.no_grad():
    for p, a in zip(ps, p_keep): p.copy_(a)
    for m, a in zip(ms, m_keep): m.copy_(a)
    for v, a in zip(vs, v_keep): v.copy_(a)
    for s, a in zip(st, s_keep): s.copy_(a)
wd = [groups[id(p)] for p in ps]
for p, g, m, v, s, w in zip(ps, gs, ms, vs, st, wd):
    adamw_step([p], [g], [m], [v], [s], 3e-4, 0.9, 0.95, 1e-8, w)
err = max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(ps, pt))
print(f"triton vs torch fused, one step: max rel err {err:.3e}")
