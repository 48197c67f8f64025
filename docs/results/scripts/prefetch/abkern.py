"""The Hopper expert kernels (each a part) from several copies of sonic_kernels: each NAME=PATH loaded as a module of
its own, outputs compared bit for bit with the first's, timed in alternating rounds (three), beside cuBLAS on a dense
GEMM of each kernel's size, at h200_moe's layer shape and the README's four: the up-projection, the grouped GEMMs
(y's a @ W2 and dX~'s dH @ W1^T), dA', and the weight gradients (dW1, dW2; bf16, and fp32 with the sums of squares).
usage: abkern.py OUT.json NAME=PATH ..."""
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
bf = dict(device="cuda", dtype=torch.bfloat16)


def flat(x):
    return [t for t in (x if isinstance(x, (tuple, list)) else (x,)) if torch.is_tensor(t)]


out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x, dO = torch.randn(T, d, **bf), torch.randn(T, d, **bf)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h, a, Ap, dH = torch.randn(R, 2 * n, **bf), torch.randn(R, n, **bf), torch.randn(R, n, **bf), torch.randn(R, 2 * n, **bf)
    order = sk.expert_order(r.offsets)
    kernels = {   # name: (call(m), cuBLAS's dense GEMM of its size (operand shapes))
        "up": (lambda m: m.up_swiglu(x, w1, r), ((R, d), (d, 2 * n))),
        "y": (lambda m: m.grouped_mm(a, w2, r), ((R, n), (n, d))),
        "dX~": (lambda m: m.grouped_mm(dH, w1, r, trans_b=True), ((R, 2 * n), (2 * n, d))),
        "dA'": (lambda m: m.down_bwd(dO, w2, h, r), ((R, d), (d, n))),
        "dW2 bf16": (lambda m: m.wgrad(Ap, dO, r, gather_a=False, gather_b=True, out_dtype=torch.bfloat16, order=order),
                     ((E, n, R // E), (E, R // E, d))),
        "dW1 bf16": (lambda m: m.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.bfloat16, order=order),
                     ((E, d, R // E), (E, R // E, 2 * n))),
        "dW2 fp32 sq": (lambda m: m.wgrad(Ap, dO, r, gather_a=False, gather_b=True, out_dtype=torch.float32,
                                          order=order, squares=True), None),
        "dW1 fp32 sq": (lambda m: m.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32,
                                          order=order, squares=True), None),
    }
    for kname, (call, dense) in kernels.items():
        res = {v: flat(call(m)) for v, m in MODS}
        torch.cuda.synchronize()
        first = MODS[0][0]
        # bit for bit; the sums of squares' parts compared by their sum (their order may differ)
        same = {v: all(torch.equal(p, q) if p.dtype != torch.float32 or p.dim() > 1 or "sq" not in kname
                       else torch.allclose(p.sum(), q.sum(), rtol=1e-6) for p, q in zip(res[first], res[v]))
                for v, _ in MODS[1:]}
        del res
        times = {v: [] for v, _ in MODS}
        for rnd in range(3):
            for v, m in MODS:
                times[v].append(do_bench(lambda m=m: call(m), warmup=10, rep=150) * 1e3)
        cub = None
        if dense is not None:
            A_, B_ = torch.randn(*dense[0], **bf), torch.randn(*dense[1], **bf)
            f = (lambda: torch.bmm(A_, B_)) if len(dense[0]) == 3 else (lambda: torch.mm(A_, B_))
            cub = min(do_bench(f, warmup=10, rep=150) for _ in range(2)) * 1e3
            del A_, B_
        print(f"{name:9s} {kname:12s} cuBLAS {cub or float('nan'):7.1f} us; bit-identical to {first}: {same}",
              flush=True)
        for v, t in times.items():
            ratio = f"   cuBLAS / best {cub / min(t):.3f}" if cub else ""
            print(f"    {v:8s} us " + " ".join(f"{u:7.1f}" for u in t) + ratio, flush=True)
        out.append(dict(shape=name, kernel=kname, bit_identical=same, us=times, cublas_us=cub))
    del r, x, dO, w1, w2, h, a, Ap, dH
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
