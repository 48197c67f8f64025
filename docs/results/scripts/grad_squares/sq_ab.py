"""The weight gradients' sums of squares, two ways against none (fp32 gradients, the default wide tiles, rounds
alternated): one sum a consumer's half-tile (a cross-warp reduction through shared memory) or one a row
(WG_SQ_ROWS: within each warp's quads, stored as a vector). Also the sum against float64 over the gradient."""
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
        def f(v):
            sk.WG_SQ_ROWS = v == 'rows'
            return sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=torch.float32, order=order,
                            squares=v != 'plain')
        plain = f('plain')
        want = plain.double().square().sum().item()
        checks = []
        for v in ('tile', 'rows'):
            got, parts = f(v)
            checks.append(f"{v}: same {torch.equal(got, plain)} rel {abs(parts.double().sum().item() - want) / want:.1e} "
                          f"parts {parts.numel()}")
        times = {v: [] for v in ('plain', 'tile', 'rows')}
        for rnd in range(3):
            for v in times:
                times[v].append(do_bench(lambda: f(v), warmup=25, rep=200))
        t0 = statistics.median(times['plain'])
        print(f"{label} {name}: " + " | ".join(
            f"{v} {statistics.median(ts)*1e3:.1f} us ({(statistics.median(ts)/t0-1)*100:+.1f}%) "
            f"[{' '.join(f'{t*1e3:.0f}' for t in ts)}]" for v, ts in times.items()) + " | " + "; ".join(checks), flush=True)
    del x, dH, Ap, dO
    torch.cuda.empty_cache()
sk.WG_SQ_ROWS = False
