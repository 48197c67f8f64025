"""The grouped GEMMs (y = a @ W2_e, dX~ = dH @ W1_e^T) in Gluon (_grouped_mm_hopper_kernel, this tree)
against float64 at small shapes and against _grouped_mm_kernel, then both timed at h200_moe's layer
shape and the paper's four, beside cuBLAS on a dense GEMM of the same size (a part).
usage: grouped_probe.py OUT.json"""
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

def run(mode, a, b, r, trans_b):
    sk.HOPPER_GROUPED = mode
    try:
        return sk.grouped_mm(a, b, r, trans_b=trans_b)
    finally:
        sk.HOPPER_GROUPED = None

out = []
torch.manual_seed(0)
for (T, d, n, E, K) in [(300, 48, 32, 4, 2), (1000, 256, 192, 16, 4), (2049, 512, 256, 32, 8), (777, 1544, 384, 8, 2)]:
    r = routing(T, E, K, empty_last=True)
    R = r.gather_idx.numel()
    off = r.offsets.tolist()
    for call, KD, N, trans_b in [("y", n, d, False), ("dX", 2 * n, d, True)]:
        a = torch.randn(R, KD, device="cuda", dtype=torch.bfloat16)
        b = (torch.randn(E, N, KD, device="cuda") if trans_b else torch.randn(E, KD, N, device="cuda")).to(torch.bfloat16)
        want = torch.cat([a.double()[off[e]:off[e + 1]] @ (b[e].double().t() if trans_b else b[e].double()) for e in range(E)])
        got, tri = run(None, a, b, r, trans_b), run(False, a, b, r, trans_b)
        e = dict(hopper_f64=rel(got, want), triton_f64=rel(tri, want), hopper_triton=rel(got, tri))
        print(f"check {(T, d, n, E, K)} {call}: " + " ".join(f"{k} {v:.1e}" for k, v in e.items()), flush=True)
        out.append(dict(check=(T, d, n, E, K), call=call, **e))
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    R = T * K
    for call, KD, N, trans_b in [("y", n, d, False), ("dX", 2 * n, d, True)]:
        a = torch.randn(R, KD, device="cuda", dtype=torch.bfloat16)
        b = (torch.randn(E, N, KD, device="cuda") if trans_b else torch.randn(E, KD, N, device="cuda")).to(torch.bfloat16)
        flops = 2 * R * KD * N
        for rnd in range(2):
            res = {}
            for mode, kname in [(False, "triton"), (None, "hopper")]:
                res[kname] = run(mode, a, b, r, trans_b)
                ms = do_bench(lambda: run(mode, a, b, r, trans_b), warmup=10, rep=100)
                print(f"{name} {call} {kname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:4.0f} TFLOPS", flush=True)
                out.append(dict(shape=name, call=call, kernel=kname, round=rnd, us=ms * 1e3))
            if rnd == 0:
                print(f"{name} {call} hopper vs triton: {rel(res['hopper'], res['triton']):.1e}", flush=True)
        a_, b_ = torch.randn(R, KD, device="cuda", dtype=torch.bfloat16), torch.randn(KD, N, device="cuda", dtype=torch.bfloat16)
        ms = do_bench(lambda: torch.mm(a_, b_), warmup=10, rep=100)
        print(f"{name} {call} cuBLAS dense ({R}x{KD}) @ ({KD}x{N}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:4.0f} TFLOPS", flush=True)
        del a, b, a_, b_
    del r
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
