"""The Gluon dA' kernel with its epilogue in a fourth warpgroup (this tree) against main's Gluon kernel,
whose consumers run the epilogue themselves (.gpu/sk_main.py = `git show 32e1c37:sonic_kernels.py`), and
against the Triton kernel: float64 checks at small shapes, then timed at h200_moe's layer shape and the
paper's four. usage: epi_probe.py OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk
sys.path.insert(0, ".gpu")
import sk_main

def routing(T, E, K, skew, empty_last=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g) + skew * torch.randn(E, device="cuda", generator=g)
    if empty_last:
        logits[:, -1] = -float("inf")
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

def reference(dout, w2, h, r):
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    n = w2.shape[1]
    dA = torch.cat([dout.double()[gi[off[e]:off[e + 1]]] @ w2[e].double().t() for e in range(w2.shape[0])])
    g, u, s = h.double()[:, :n], h.double()[:, n:], r.row_score.double()[:, None]
    sig = torch.sigmoid(g); silu = g * sig
    return torch.cat([s * dA * u * (sig + silu * (1 - sig)), s * dA * silu], 1), s * silu * u, (dA * silu * u).sum(1)

def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()

KERNELS = [("triton", sk, False), ("gluon_main", sk_main, None), ("gluon_epilogue_wg", sk, None)]
out = []
torch.manual_seed(0)
for (T, d, n, E, K) in [(300, 48, 32, 4, 2), (1000, 256, 192, 16, 4), (2049, 512, 256, 32, 8), (777, 1536, 384, 8, 2)]:
    r = routing(T, E, K, 1.0, empty_last=True)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / d ** 0.5).to(torch.bfloat16)
    h = torch.randn(T * K, 2 * n, device="cuda", dtype=torch.bfloat16)
    want = reference(dout, w2, h, r)
    for kname, mod, mode in KERNELS:
        mod.HOPPER_DOWN_BWD = mode
        got = mod.down_bwd(dout, w2, h, mod.Routing(*r))
        mod.HOPPER_DOWN_BWD = None
        errs = [rel(x, y) for x, y in zip(got, want)]
        print(f"check {(T, d, n, E, K)} {kname:18s} vs f64: dH {errs[0]:.1e} A' {errs[1]:.1e} dS {errs[2]:.1e}", flush=True)
        out.append(dict(check=(T, d, n, E, K), kernel=kname, rel_err=errs))
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K, 0.0)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / d ** 0.5).to(torch.bfloat16)
    h = torch.randn(T * K, 2 * n, device="cuda", dtype=torch.bfloat16)
    flops = 2 * T * K * n * d
    ref = None
    for rnd in range(2):
        for kname, mod, mode in KERNELS:
            mod.HOPPER_DOWN_BWD = mode
            f = lambda: mod.down_bwd(dout, w2, h, mod.Routing(*r))
            res = f()
            ref = res if ref is None else ref
            ms = do_bench(f, warmup=10, rep=150)
            mod.HOPPER_DOWN_BWD = None
            err = max(rel(x, y) for x, y in zip(res, ref))
            print(f"{name} {kname:18s} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS  vs triton {err:.1e}", flush=True)
            out.append(dict(shape=name, kernel=kname, round=rnd, us=ms * 1e3, rel_err=err))
    del r, dout, w2, h, ref
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
