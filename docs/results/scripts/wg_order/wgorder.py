"""The weight gradients (the Hopper kernel, a part: dW2 and dW1 timed apart, bf16 as bench.py's layer and fp32 as
training's, with its sums of squares) from several copies of sonic_kernels whose tile orders differ, each computing
its own order (expert_order): outputs compared bit for bit with the first's, timed in alternating rounds (three),
beside cuBLAS's bmm over E equal row blocks, at h200_moe's layer shape, 7B and 30B, on routing of random logits
(skew 0) and of logits with a N(0, 1) bias an expert (skew 1; the log gives the busiest expert's load over the mean).
usage: wgorder.py OUT.json NAME=PATH ..."""
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
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16)}
out = []
for name, skew in [(nm, sw) for nm in SHAPES for sw in (0, 1)]:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    bias = skew * torch.randn(E, device="cuda", generator=g)
    top, idx = (torch.randn(T, E, device="cuda", generator=g) + bias).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    Ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    load = torch.bincount(idx.flatten(), minlength=E).float()
    name_s = f"{name} skew {skew} (max/mean load {float(load.max() / load.mean()):.1f})"
    for kname, (a, b, ga, (M, N)) in {"dW2": (Ap, dO, False, (n, d)), "dW1": (x, dH, True, (d, 2 * n))}.items():
        a_ = torch.randn(E, M, R // E, device="cuda", dtype=torch.bfloat16)
        b_ = torch.randn(E, R // E, N, device="cuda", dtype=torch.bfloat16)
        cub = min(do_bench(lambda: torch.bmm(a_, b_), warmup=10, rep=200) for _ in range(2)) * 1e3
        del a_, b_
        for dt, sq in ((torch.bfloat16, False), (torch.float32, True)):
            res = {v: m.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=dt, squares=sq)
                   for v, m in MODS}
            torch.cuda.synchronize()
            first = MODS[0][0]
            # the gradient bit for bit, and the sum of its squares (the parts' order may differ)
            same = {v: torch.equal(res[first][0], res[v][0]) and torch.allclose(res[first][1].sum(), res[v][1].sum(),
                                                                                 rtol=1e-6)
                    if sq else torch.equal(res[first], res[v]) for v, _ in MODS[1:]}
            del res
            times = {v: [] for v, _ in MODS}
            for rnd in range(3):
                for v, m in MODS:
                    f = lambda m=m: m.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=dt, squares=sq)
                    times[v].append(do_bench(f, warmup=10, rep=200) * 1e3)
            tag = f"{name_s} {kname} {str(dt)[6:]}{' sq' if sq else ''}"
            print(f"{tag} cuBLAS bmm (bf16) {cub:7.1f} us; bit-identical to {first}: {same}", flush=True)
            for v, t in times.items():
                print(f"    {v:8s} us " + " ".join(f"{u:7.1f}" for u in t) + f"   cuBLAS / best {cub / min(t):.3f}",
                      flush=True)
            out.append(dict(shape=name, skew=skew, kernel=kname, dtype=str(dt), bit_identical=same, us=times, cublas_us=cub))
    del r, x, dO, Ap, dH
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
