"""The Hopper dA' kernel (_down_bwd_hopper_kernel) against float64 and against _down_bwd_kernel, then timed
against it at h200_moe's layer shape and the paper's four, uniform and skewed routing. usage: db_probe.py OUT.json"""
import sys, json
import torch
import torch.nn.functional as F
from triton.testing import do_bench
import sonic_kernels as sk

def routing(T, E, K, skew, seed=0, empty_last=False):
    g = torch.Generator(device="cuda").manual_seed(seed)
    logits = torch.randn(T, E, device="cuda", generator=g) + skew * torch.randn(E, device="cuda", generator=g)
    if empty_last:
        logits[:, -1] = -float("inf")
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

def reference(dout, w2, h, r):
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    E, n, d = w2.shape
    dA = torch.zeros(h.shape[0], n, dtype=torch.float64, device="cuda")
    for e in range(E):
        if off[e + 1] > off[e]:
            dA[off[e]:off[e + 1]] = dout.double()[gi[off[e]:off[e + 1]]] @ w2[e].double().t()
    g, u = h.double()[:, :n], h.double()[:, n:]
    s = r.row_score.double()[:, None]
    sig = torch.sigmoid(g); silu = g * sig; a = silu * u
    ds = (dA * a).sum(1)
    dH = torch.cat([s * dA * u * (sig + silu * (1 - sig)), s * dA * silu], 1)
    return dH, a * s, ds

def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()

out = []
torch.manual_seed(0)
# correctness: sizes off the tiles, an expert with no rows, n not a multiple of BLOCK_N, d not of BLOCK_K
for (T, d, n, E, K) in [(300, 48, 32, 4, 2), (1000, 256, 192, 16, 4), (2049, 512, 256, 32, 8), (777, 1536, 384, 8, 2)]:
    r = routing(T, E, K, 1.0, empty_last=True)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16) / d ** 0.5
    h = torch.randn(r.gather_idx.numel(), 2 * n, device="cuda", dtype=torch.bfloat16)
    want = reference(dout, w2, h, r)
    res = {}
    for mode in (False, True):
        sk.HOPPER_DOWN_BWD = mode
        res[mode] = sk.down_bwd(dout, w2, h, r)
    sk.HOPPER_DOWN_BWD = False
    for name, i in (("dH", 0), ("Ap", 1), ("dS", 2)):
        e_h, e_t, e_ht = rel(res[True][i], want[i]), rel(res[False][i], want[i]), rel(res[True][i], res[False][i])
        print(f"check {(T, d, n, E, K)} {name}: hopper vs f64 {e_h:.1e}, triton vs f64 {e_t:.1e}, hopper vs triton {e_ht:.1e}", flush=True)
        out.append(dict(check=(T, d, n, E, K), out=name, hopper_f64=e_h, triton_f64=e_t, hopper_triton=e_ht))
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
for name, (T, d, n, E, K) in SHAPES.items():
    for skew in ((0.0, 2.0) if name == "h200_moe" else (0.0,)):
        r = routing(T, E, K, skew)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16) / d ** 0.5
        h = torch.randn(r.gather_idx.numel(), 2 * n, device="cuda", dtype=torch.bfloat16)
        flops = 2 * T * K * n * d
        for rnd in range(2):
            res = {}
            for mode in (False, True):
                sk.HOPPER_DOWN_BWD = mode
                f = lambda: sk.down_bwd(dout, w2, h, r)
                res[mode] = f()
                ms = do_bench(f, warmup=10, rep=150)
                print(f"{name} skew {skew} {'hopper' if mode else 'triton'} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
                out.append(dict(shape=name, skew=skew, kernel="hopper" if mode else "triton", round=rnd, us=ms * 1e3))
            sk.HOPPER_DOWN_BWD = False
            if rnd == 0:
                print(f"{name} hopper vs triton: dH {rel(res[True][0], res[False][0]):.1e} Ap {rel(res[True][1], res[False][1]):.1e} dS {rel(res[True][2], res[False][2]):.1e}", flush=True)
        a = torch.randn(T * K, d, device="cuda", dtype=torch.bfloat16); b = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
        ms = do_bench(lambda: torch.mm(a, b), warmup=10, rep=100)
        print(f"{name} cuBLAS dense ({T * K}x{d}) @ ({d}x{n}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
        del r, dout, w2, h, a, b
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
