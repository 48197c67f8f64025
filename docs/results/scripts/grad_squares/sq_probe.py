"""The weight gradients' sums of squares from the epilogue (wgrad's squares): the Hopper kernel's time with
and without them (fp32 gradients, training's; the default wide tiles; rounds alternated), the sum against
float64 over the stored gradient, and the time of reading the gradient for its norm instead (what
squares saves)."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import sonic_kernels as sk
from triton.testing import do_bench

shapes = [('1.4B 256/128/8', 40960, 768, 256, 128, 8), ('h200_moe', 16384, 1536, 256, 128, 8),
          ('30B 256/256/16', 32768, 4096, 256, 256, 16), ('120B 2048/64/4', 32768, 4096, 2048, 64, 4)]
dev = 'cuda'
for label, T, d, n, E, K in shapes:
    torch.manual_seed(0)
    idx = torch.randn(T, E, device=dev).topk(K, dim=1).indices
    r = sk.routing_metadata(None, idx.flatten(), torch.rand(T * K, device=dev), T, E)
    order = sk.expert_order(r.offsets)
    R = T * K
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device=dev, dtype=torch.bfloat16)
    Ap = torch.randn(R, n, device=dev, dtype=torch.bfloat16)
    dO = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    for name, (a, b, ga) in {'dW1': (x, dH, True), 'dW2': (Ap, dO, False)}.items():
        f = lambda sq: sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=torch.float32, order=order, squares=sq)
        plain = f(False)
        got, parts = f(True)
        same = torch.equal(plain, got)
        want = got.double().square().sum()
        rel = abs(parts.double().sum().item() - want.item()) / want.item()
        times = {False: [], True: []}
        for rnd in range(3):
            for sq in (False, True):
                times[sq].append(do_bench(lambda: f(sq), warmup=25, rep=200))
        norm_ms = do_bench(lambda: torch.linalg.vector_norm(got), warmup=25, rep=200)
        sum_ms = do_bench(lambda: parts.sum(), warmup=25, rep=200)
        t0, t1 = statistics.median(times[False]), statistics.median(times[True])
        print(f"{label} {name}: plain {t0*1e3:.1f} us [{' '.join(f'{t*1e3:.0f}' for t in times[False])}] | squares "
              f"{t1*1e3:.1f} us [{' '.join(f'{t*1e3:.0f}' for t in times[True])}] ({(t1/t0-1)*100:+.1f}%) | same grad "
              f"{same} | sum rel err {rel:.1e} | reading it for its norm {norm_ms*1e3:.1f} us, summing the parts "
              f"({parts.numel()}) {sum_ms*1e3:.1f} us", flush=True)
    del x, dH, Ap, dO
    torch.cuda.empty_cache()
