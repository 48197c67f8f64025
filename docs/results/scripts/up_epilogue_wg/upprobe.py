"""The Gluon up-projection with its epilogue warpgroup (_up_hopper_kernel, this tree) against float64 at
small shapes and against _up_swiglu_kernel (h must be equal), then both timed at h200_moe's layer shape and the paper's four, beside cuBLAS on a
dense GEMM of the same size (a part). usage: up_probe.py OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk

def routing(T, E, K, empty_last=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    if empty_last:
        logits[:, -1] = -float("inf")
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()

out = []
torch.manual_seed(0)
for (T, d, n, E, K) in [(300, 48, 32, 4, 2), (1000, 256, 192, 16, 4), (2049, 512, 256, 32, 8), (777, 1536, 384, 8, 2)]:
    r = routing(T, E, K, empty_last=True)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    want = torch.cat([x.double()[gi[off[e]:off[e + 1]]] @ w1[e].double() for e in range(E)])
    res = {}
    for mode in (False, None):
        sk.HOPPER_UP = mode
        res[mode] = sk.up_swiglu(x, w1, r)
    sk.HOPPER_UP = None
    h, a = res[None]
    g, u = h.double()[:, :n], h.double()[:, n:]
    e = dict(h_f64=rel(h, want), a_f64=rel(a, g * torch.sigmoid(g) * u), h_triton=rel(h, res[False][0]),
             a_triton=rel(a, res[False][1]), triton_h_f64=rel(res[False][0], want),
             h_equal=float(torch.equal(h, res[False][0])), a_equal=float(torch.equal(a, res[False][1])))
    print(f"check {(T, d, n, E, K)}: " + " ".join(f"{k} {v:.1e}" for k, v in e.items()), flush=True)
    out.append(dict(check=(T, d, n, E, K), **e))
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    flops = 2 * T * K * 2 * n * d
    for rnd in range(2):
        res = {}
        for mode in (False, None):
            sk.HOPPER_UP = mode
            f = lambda: sk.up_swiglu(x, w1, r)
            res[mode] = f()
            ms = do_bench(f, warmup=10, rep=150)
            kname = "hopper" if mode is None else "triton"
            print(f"{name} {kname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(shape=name, kernel=kname, round=rnd, us=ms * 1e3))
        sk.HOPPER_UP = None
        if rnd == 0:
            print(f"{name} hopper vs triton: h {rel(res[None][0], res[False][0]):.1e} a {rel(res[None][1], res[False][1]):.1e}"
                  f" h equal {torch.equal(res[None][0], res[False][0])} a equal {torch.equal(res[None][1], res[False][1])}", flush=True)
    a_ = torch.randn(T * K, d, device="cuda", dtype=torch.bfloat16)
    b_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    ms = do_bench(lambda: torch.mm(a_, b_), warmup=10, rep=100)
    print(f"{name} cuBLAS dense ({T * K}x{d}) @ ({d}x{2 * n}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
    del r, x, w1, a_, b_
    torch.cuda.empty_cache()
# variants of the Hopper kernel's config, one round each
base = dict(sk.UP_CONFIG)
VARIANTS = [dict(), dict(CONSUMER_REGS=168, EPILOGUE_REGS=104), dict(CONSUMER_REGS=184, EPILOGUE_REGS=72),
            dict(BLOCK_K=32, STAGES=6)]
for name in ("h200_moe", "1.4B", "30B"):
    T, d, n, E, K = SHAPES[name]
    r = routing(T, E, K)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    flops = 2 * T * K * 2 * n * d
    sk.HOPPER_UP = None
    ref = None
    for v in VARIANTS:
        sk.UP_CONFIG = {**base, **v}
        f = lambda: sk.up_swiglu(x, w1, r)
        got = f()
        ref = got if ref is None else ref
        ms = do_bench(f, warmup=10, rep=150)
        print(f"{name} variant {v}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS equal {torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])}", flush=True)
        out.append(dict(shape=name, variant=str(v), us=ms * 1e3))
    sk.UP_CONFIG = base
    del r, x, w1
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
