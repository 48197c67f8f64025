"""The Hopper kernels that gather (the up-projection, dA', the weight gradients dW2 and dW1 in fp32, training's), parts,
before and after a change to sonic_kernels: the module at BEFORE (a path) against the tree's, outputs compared bit for
bit, timed in three alternating rounds, cuBLAS on a dense GEMM of each kernel's size beside.
usage: kab.py BEFORE OUT.json [SHAPE ...]   (SHAPE: h200_moe, 1.4B, 7B, 30B, 120B; all five by default)"""
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
MODS = [("before", before), ("after", sk)]
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}


def kernels(m, x, w1, w2, dO, h, ap, r, R, n):
    hh, a = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    dH, Ap = torch.empty_like(hh), torch.empty_like(a)
    order = m.expert_order(r.offsets)
    f32 = torch.float32
    return {"up": lambda: (m._up_hopper(x, w1, r, hh, a), (hh, a))[1],
            "dA'": lambda: (m._down_bwd_hopper(dO, w2, h, r, dH, Ap), dH, Ap),
            "dW2": lambda: m.wgrad(ap, dO, r, gather_a=False, gather_b=True, out_dtype=f32, order=order),
            "dW1": lambda: m.wgrad(x, h, r, gather_a=True, gather_b=False, out_dtype=f32, order=order)}


def flat(o):
    return [t for v in o for t in flat(v)] if isinstance(o, (tuple, list)) else [o]


out = []
for name in sys.argv[3:] or list(SHAPES):
    T, d, n, E, K = SHAPES[name]
    R = T * K
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    ks = {mn: kernels(m, x, w1, w2, dO, h, ap, r, R, n) for mn, m in MODS}
    dense = {"up": (R, d, 2 * n, 1), "dA'": (R, d, n, 1), "dW2": (n, R // E, d, E), "dW1": (d, R // E, 2 * n, E)}
    row = dict(shape=name, kernels={})
    for kn in ks["before"]:
        res = {mn: [t.clone() for t in flat(ks[mn][kn]())] for mn, _ in MODS}
        torch.cuda.synchronize()
        same = all(torch.equal(p, q) for p, q in zip(res["before"], res["after"]))
        del res
        times = {mn: [] for mn, _ in MODS}
        for rnd in range(3):
            for mn, _ in MODS:
                times[mn].append(do_bench(ks[mn][kn], warmup=10, rep=200) * 1e3)
        M, Kd, N, b = dense[kn]
        A_ = torch.randn(b, M, Kd, device="cuda", dtype=torch.bfloat16)
        B_ = torch.randn(b, Kd, N, device="cuda", dtype=torch.bfloat16)
        cub = do_bench(lambda: torch.bmm(A_, B_), warmup=10, rep=200) * 1e3
        del A_, B_
        print(f"{name:8s} {kn:4s} bit-identical {same}; us before {' '.join(f'{t:7.1f}' for t in times['before'])}"
              f" | after {' '.join(f'{t:7.1f}' for t in times['after'])} | cuBLAS {cub:7.1f}"
              f" | best after/before {min(times['after']) / min(times['before']):.3f}", flush=True)
        row["kernels"][kn] = dict(bit_identical=same, us=times, cublas_us=cub)
    out.append(row)
    del ks, x, dO, w1, w2, h, ap, r
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
