"""dA' (the Hopper kernel, a part) before and after a change to sonic_kernels: the module at BEFORE (a path) against
the tree's, outputs compared bit for bit, timed in alternating rounds, beside cuBLAS on a dense GEMM of dA''s size.
Each VARIANT (NAME=KEY:VALUE,...) is the tree's kernel with those keys of its config changed (both configs); the
key DENSE:1 instead reads dO's rows in order from an (R, d) tensor (no gather: a proxy, its outputs not compared).
usage: dbab.py BEFORE OUT.json [VARIANT ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sys.argv[1]).read()
path = os.path.join(tempfile.mkdtemp(), "sk_before.py")
open(path, "w").write(src.replace('"sonic::', '"sonicbefore::').replace("torch.ops.sonic", "torch.ops.sonicbefore"))
spec = importlib.util.spec_from_file_location("sk_before", path)
before = importlib.util.module_from_spec(spec)
spec.loader.exec_module(before)

VARIANTS = [("before", before, None), ("after", sk, None)]
for v in sys.argv[3:]:
    vname, kv = v.split("=")
    VARIANTS.append((vname, sk, {k: int(x) for k, x in (p.split(":") for p in kv.split(","))}))


def call(m, over, *args):
    if over is None:
        return m._down_bwd_hopper(*args)
    if over.get("DENSE"):
        dO, w2, h, r, dH, Ap = args
        return m._down_bwd_hopper(DENSE[0], w2, h, r._replace(gather_idx=DENSE[1]), dH, Ap)
    saved = sk.DB_CONFIG, sk.DB_WIDE_CONFIG
    sk.DB_CONFIG, sk.DB_WIDE_CONFIG = {**saved[0], **over}, {**saved[1], **over}
    try:
        return m._down_bwd_hopper(*args)
    finally:
        sk.DB_CONFIG, sk.DB_WIDE_CONFIG = saved


DENSE = []   # (dO as R rows, the identity gather) at the shape being timed
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    assert sk._use_hopper_down_bwd(dO, w2, h) and before._use_hopper_down_bwd(dO, w2, h)
    DENSE[:] = [torch.randn(R, d, device="cuda", dtype=torch.bfloat16),
                torch.arange(R, device="cuda", dtype=r.gather_idx.dtype)]
    res = {}
    for vname, m, over in VARIANTS:
        dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        res[vname] = (dH, Ap, call(m, over, dO, w2, h, r, dH, Ap))
    torch.cuda.synchronize()
    same = {v: [torch.equal(a, b) for a, b in zip(res["before"], res[v])] for v, _, o in VARIANTS
            if v != "before" and not (o or {}).get("DENSE")}
    del res
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    flops = 2 * R * n * d
    times = {v[0]: [] for v in VARIANTS}
    for rnd in range(3):
        for vname, m, over in VARIANTS:
            ms = do_bench(lambda: call(m, over, dO, w2, h, r, dH, Ap), warmup=10, rep=200)
            times[vname].append(ms * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=200) * 1e3
    del A_, B_
    fmt = lambda v: " ".join(f"{x:7.1f}" for x in v)
    print(f"{name:9s} cuBLAS {cub:7.1f} us; bit-identical to before (dH, A', dS): {same}", flush=True)
    for v, t in times.items():
        print(f"    {v:16s} us {fmt(t)}   ratio to cuBLAS (best round) {cub / min(t):.2f}", flush=True)
    out.append(dict(shape=name, bit_identical=same, us=times, cublas_us=cub, flops=flops))
    del r, dO, w2, h, dH, Ap
    DENSE.clear()
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
