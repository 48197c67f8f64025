"""moe.experts_torch (one gather, split by expert) against the form before it (a gather per expert,
copied below from commit 8056e6b): bf16 output and gradients against float64, and fwd+bwd time, on a GPU.
    PYTHONPATH=. python docs/results/scripts/torch_gather/probe.py
"""
import json
import torch
import torch.nn.functional as F
from triton.testing import do_bench
import moe

def old_experts_torch(x, w1, w2, pair_tok, pair_exp, pair_score):
    """The reference: group the pairs by expert, run each expert's SwiGLU MLP on its rows, then
    take the gate-weighted sum in fp32. Readable, with a loop over experts (never over tokens)."""
    T, E = x.shape[0], w1.shape[0]
    order = torch.argsort(pair_exp, stable=True)              # grouped order: pairs sorted by expert
    counts = torch.bincount(pair_exp, minlength=E + 1)[:E].tolist()  # host sync: fine for a reference
    rows = pair_tok[order]
    ys, start = [], 0
    for e, c in enumerate(counts):
        if c == 0:
            continue
        xe = x[rows[start:start + c]]                          # (c, d)
        g, u = (xe @ w1[e]).chunk(2, dim=-1)                   # (c, n) each
        ys.append((F.silu(g) * u) @ w2[e])                     # (c, d)
        start += c
    out = torch.zeros(T, x.shape[1], dtype=torch.float32, device=x.device)
    if ys:
        y = torch.cat(ys).float() * pair_score[order[:start], None].float()
        out.index_add_(0, rows[:start], y)
    return out.to(x.dtype)


def inputs(T, d, n, E, K, dt, seed=0):
    g = torch.Generator(device='cuda').manual_seed(seed)
    x = torch.randn(T, d, device='cuda', generator=g)
    w1 = torch.randn(E, d, 2 * n, device='cuda', generator=g) / d ** 0.5
    w2 = torch.randn(E, n, d, device='cuda', generator=g) / n ** 0.5
    logits = torch.randn(T, E, device='cuda', generator=g)
    top, idx = logits.topk(K, dim=-1)
    score = F.softmax(top, dim=-1)
    pair_tok = torch.arange(T, device='cuda').repeat_interleave(K)
    leaves = [t.to(dt).requires_grad_() for t in (x, w1, w2, score.flatten())]
    return leaves, pair_tok, idx.flatten()


def run(fn, leaves, pair_tok, pair_exp):
    x, w1, w2, s = leaves
    out = fn(x, w1, w2, pair_tok, pair_exp, s)
    grads = torch.autograd.grad(out, leaves, torch.ones_like(out) / out.numel() ** 0.5)
    return [out, *grads]


rel = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
res = {}
for label, (T, d, n, E, K) in {'default GPU config': (16384, 512, 128, 64, 8), 'h200_moe': (16384, 1536, 256, 128, 8),
                               '1.4B 256/128/8': (40960, 768, 256, 128, 8)}.items():
    ref = run(moe.experts_torch, *inputs(T, d, n, E, K, torch.float64))
    row = {}
    for name, fn in (('new', moe.experts_torch), ('old', old_experts_torch)):
        got = run(fn, *inputs(T, d, n, E, K, torch.bfloat16))
        row[name + '_relerr'] = dict(zip(['out', 'dx', 'dw1', 'dw2', 'dscore'], [rel(a, b) for a, b in zip(got, ref)]))
    del ref
    leaves, pt, pe = inputs(T, d, n, E, K, torch.bfloat16)
    for r in range(3):   # alternating rounds
        for name, fn in (('new', moe.experts_torch), ('old', old_experts_torch)):
            row.setdefault(name + '_ms', []).append(round(do_bench(lambda: run(fn, leaves, pt, pe), warmup=5, rep=50), 2))
    torch.cuda.reset_peak_memory_stats()
    run(moe.experts_torch, leaves, pt, pe)
    row['new_peak_mib'] = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    run(old_experts_torch, leaves, pt, pe)
    row['old_peak_mib'] = torch.cuda.max_memory_allocated() / 2**20
    res[label] = row
    print(label, json.dumps(row), flush=True)
