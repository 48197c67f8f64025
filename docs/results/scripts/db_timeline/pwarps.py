"""Whether the gathered rows' cp.async copies, which dA''s consumers wait on most (dbtl.py), are capped per producer
warp or per SM: copies of sonic_kernels whose producer partitions have 8 or 2 warps instead of 4 (WG_PRODUCER_WARPS;
the register split rebalanced so that the 16 or 20 warps fit), timed in alternating rounds against the tree's dA'
(a part), outputs compared bit for bit. usage: pwarps.py OUT.json"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

VARIANTS = {8: dict(CONSUMER_REGS=160, EPILOGUE_REGS=128, PRODUCER_REGS=32),   # 20 warps: 64K registers exactly
            2: dict(CONSUMER_REGS=160, EPILOGUE_REGS=160, PRODUCER_REGS=32)}
mods = {}
src = open(sk.__file__).read()
for warps in VARIANTS:
    s = src.replace("WG_PRODUCER_WARPS = gl.constexpr(4)", f"WG_PRODUCER_WARPS = gl.constexpr({warps})")
    assert s != src
    path = os.path.join(tempfile.mkdtemp(), f"sk_pw{warps}.py")
    open(path, "w").write(s.replace('"sonic::', f'"sonicpw{warps}::').replace("torch.ops.sonic", f"torch.ops.sonicpw{warps}"))
    spec = importlib.util.spec_from_file_location(f"sk_pw{warps}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    m.DB_WIDE_CONFIG = {**m.DB_WIDE_CONFIG, **VARIANTS[warps]}
    mods[f"producer {warps} warps"] = m

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
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
    variants = {"tree (4 warps)": sk, **mods}
    res = {}
    for v, m in variants.items():
        dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        res[v] = (dH, Ap, m._down_bwd_hopper(dO, w2, h, r, dH, Ap))
    torch.cuda.synchronize()
    same = {v: all(torch.equal(a, b) for a, b in zip(res["tree (4 warps)"], res[v])) for v in mods}
    del res
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    times = {v: [] for v in variants}
    for rnd in range(3):
        for v, m in variants.items():
            times[v].append(do_bench(lambda: m._down_bwd_hopper(dO, w2, h, r, dH, Ap), warmup=10, rep=200) * 1e3)
    print(f"{name}: bit-identical to the tree {same}", flush=True)
    for v, t in times.items():
        print(f"    {v:18s} us " + " ".join(f"{x:7.1f}" for x in t), flush=True)
    out.append(dict(shape=name, bit_identical=same, us=times))
    del r, dO, w2, h, dH, Ap
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
