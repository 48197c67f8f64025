"""The up-projection (the Hopper kernel, a part) at the tree's config and with keys of UP_CONFIG changed: outputs
compared bit for bit with the tree's, timed in alternating rounds, beside cuBLAS on a dense GEMM of its size.
usage: upab.py OUT.json NAME=KEY:VALUE,... [NAME=...]"""
import json, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

VARIANTS = [("tree", {})] + [(v.split("=")[0], {k: int(x) for k, x in (p.split(":") for p in v.split("=")[1].split(","))})
                             for v in sys.argv[2:]]


def call(over, x, w1, r, h, a):
    saved = sk.UP_CONFIG
    sk.UP_CONFIG = {**saved, **over}
    try:
        sk._up_hopper(x, w1, r, h, a)
    finally:
        sk.UP_CONFIG = saved


SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    assert sk._use_hopper_up(x, w1)
    res = {}
    for vname, over in VARIANTS:
        h, a = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        call(over, x, w1, r, h, a)
        res[vname] = (h, a)
    torch.cuda.synchronize()
    same = {v: [torch.equal(p, q) for p, q in zip(res["tree"], res[v])] for v, _ in VARIANTS[1:]}
    diff = {v: [float((p.float() - q.float()).abs().max()) for p, q in zip(res["tree"], res[v])] for v, _ in VARIANTS[1:]}
    h, a = res["tree"]
    del res
    times = {v: [] for v, _ in VARIANTS}
    for rnd in range(3):
        for vname, over in VARIANTS:
            times[vname].append(do_bench(lambda: call(over, x, w1, r, h, a), warmup=10, rep=200) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=200) * 1e3
    del A_, B_
    fmt = lambda v: " ".join(f"{t:7.1f}" for t in v)
    print(f"{name:6s} cuBLAS {cub:7.1f} us; bit-identical to the tree (h, a): {same}; max |diff| {diff}", flush=True)
    for v, t in times.items():
        print(f"    {v:10s} us {fmt(t)}   ratio to cuBLAS (best round) {cub / min(t):.2f}", flush=True)
    out.append(dict(shape=name, bit_identical=same, max_abs_diff=diff, us=times, cublas_us=cub, flops=2 * R * d * 2 * n))
    del r, x, w1, h, a
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
