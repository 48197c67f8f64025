"""The Hopper weight gradients with fp32 gradients (training's) stored by TMA a half-tile at a time, the
ring at 3 stages (this tree), against the stores from registers (WG_TMA_STORE = False, 4 stages) and
the Triton kernel: float64 checks at small shapes (n = 128: dW2's half-tile past M), then dW2 and dW1
timed at h200_moe's layer shape and the paper's four, fp32 and bf16 gradients, uniform routing.
usage: split_store_probe.py OUT.json"""
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

VARIANTS = [("triton", False, None), ("registers", None, False), ("tma_store", None, None)]

def run(variant, a, b, r, ga, dt):
    _, hop, store = variant
    sk.HOPPER_WGRAD, sk.WG_TMA_STORE = hop, store
    try:
        return sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=dt)
    finally:
        sk.HOPPER_WGRAD, sk.WG_TMA_STORE = None, None

out = []
torch.manual_seed(0)
for (T, d, n, E, K) in [(300, 128, 64, 4, 2), (1000, 256, 128, 16, 4), (2049, 512, 256, 32, 8), (777, 384, 192, 8, 2)]:
    r = routing(T, E, K, empty_last=True)
    R = r.gather_idx.numel()
    x, dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16), torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    ap, dH = torch.randn(R, n, device="cuda", dtype=torch.bfloat16), torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    want = {"dW2": torch.stack([ap.double()[off[e]:off[e + 1]].t() @ dout.double()[gi[off[e]:off[e + 1]]] for e in range(E)]),
            "dW1": torch.stack([x.double()[gi[off[e]:off[e + 1]]].t() @ dH.double()[off[e]:off[e + 1]] for e in range(E)])}
    for call, a, b, ga in [("dW2", ap, dout, False), ("dW1", x, dH, True)]:
        for dt in (torch.float32, None):
            errs = {v[0]: rel(run(v, a, b, r, ga, dt), want[call]) for v in VARIANTS}
            print(f"check {(T, d, n, E, K)} {call} {'fp32' if dt else 'bf16'} vs f64: " +
                  " ".join(f"{k} {e:.1e}" for k, e in errs.items()), flush=True)
            out.append(dict(check=(T, d, n, E, K), call=call, out="fp32" if dt else "bf16", rel_err=errs))
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    R = T * K
    x, dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16), torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    ap, dH = torch.randn(R, n, device="cuda", dtype=torch.bfloat16), torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    for call, a, b, ga in [("dW2", ap, dout, False), ("dW1", x, dH, True)]:
        flops = 2 * R * a.shape[1] * b.shape[1]
        for dt in (torch.float32, None):
            ref = run(VARIANTS[1], a, b, r, ga, dt)
            for rnd in range(2):
                for v in VARIANTS:
                    c = run(v, a, b, r, ga, dt)
                    ms = do_bench(lambda: run(v, a, b, r, ga, dt), warmup=10, rep=100)
                    o = "fp32" if dt else "bf16"
                    print(f"{name} {call} {o} {v[0]:10s} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:4.0f} TFLOPS"
                          f"  vs registers {rel(c, ref):.1e}", flush=True)
                    out.append(dict(shape=name, call=call, out=o, kernel=v[0], round=rnd, us=ms * 1e3))
    del r, x, dout, ap, dH
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
