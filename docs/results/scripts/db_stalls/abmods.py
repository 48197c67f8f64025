"""dA' (the Hopper kernel, a part) from several copies of sonic_kernels: each NAME=PATH is loaded as a module of its
own; outputs compared bit for bit with the first's, timed in alternating rounds (three), beside cuBLAS on a dense
GEMM of dA''s size, at h200_moe's layer shape and the README's four.
usage: abmods.py OUT.json NAME=PATH ..."""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench

MODS = []
for i, arg in enumerate(sys.argv[2:]):
    name, path = arg.split("=")
    src = open(path).read().replace('"sonic::', f'"sonic{i}::').replace("torch.ops.sonic", f"torch.ops.sonic{i}")
    p = os.path.join(tempfile.mkdtemp(), f"sk_{name}.py")
    open(p, "w").write(src)
    spec = importlib.util.spec_from_file_location(f"sk_{name}", p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    MODS.append((name, m))
sk = MODS[0][1]
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
    res = {}
    for vname, m in MODS:
        assert m._use_hopper_down_bwd(dO, w2, h)
        dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        res[vname] = (dH, Ap, m._down_bwd_hopper(dO, w2, h, r, dH, Ap))
    torch.cuda.synchronize()
    first = MODS[0][0]
    same = {v: [torch.equal(a, b) for a, b in zip(res[first], res[v])] for v, _ in MODS[1:]}
    del res
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    times = {v: [] for v, _ in MODS}
    for rnd in range(3):
        for vname, m in MODS:
            ms = do_bench(lambda: m._down_bwd_hopper(dO, w2, h, r, dH, Ap), warmup=10, rep=200)
            times[vname].append(ms * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=200) * 1e3
    del A_, B_
    print(f"{name:9s} cuBLAS {cub:7.1f} us; bit-identical to {first} (dH, A', dS): {same}", flush=True)
    for v, t in times.items():
        print(f"    {v:12s} us " + " ".join(f"{x:7.1f}" for x in t) + f"   ratio to cuBLAS (best round) {cub / min(t):.2f}",
              flush=True)
    out.append(dict(shape=name, bit_identical=same, us=times, cublas_us=cub))
    del r, dO, w2, h, dH, Ap
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
