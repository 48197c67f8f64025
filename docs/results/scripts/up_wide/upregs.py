"""The up-projection (the Hopper kernel, a part) at several register splits, before and after a change to
sonic_kernels: each VARIANT is NAME=MODULE:CONSUMER/EPILOGUE/PRODUCER, MODULE "before" (the file at BEFORE) or "after"
(the tree's), its UP_CONFIG's registers set so. Outputs compared bit for bit with the first variant's, timed in
alternating rounds beside cuBLAS on a dense GEMM of its size.
usage: upregs.py BEFORE OUT.json VARIANT ... [-- SHAPE ...]"""
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
args = sys.argv[3:]
names = args[args.index("--") + 1:] if "--" in args else None
variants = []
for v in (args[:args.index("--")] if "--" in args else args):
    vname, spec_ = v.split("=")
    mod, regs = spec_.split(":")
    c, e, p = map(int, regs.split("/"))
    variants.append((vname, before if mod == "before" else sk, dict(CONSUMER_REGS=c, EPILOGUE_REGS=e, PRODUCER_REGS=p)))


def run(m, regs, *a):
    saved = m.UP_CONFIG
    m.UP_CONFIG = {**saved, **regs}
    try:
        return m._up_hopper(*a)
    finally:
        m.UP_CONFIG = saved


SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4), "odd": (3001, 512, 160, 6, 3)}
res = {"equal": {}, "timing": []}
for name in names or list(SHAPES):
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    outs = []
    for vname, m, regs in variants:
        h = torch.full((R, 2 * n), float("nan"), device="cuda", dtype=torch.bfloat16)
        a = torch.full((R, n), float("nan"), device="cuda", dtype=torch.bfloat16)
        run(m, regs, x, w1, r, h, a)
        outs.append((h, a))
    eq = [all(torch.equal(p, q) for p, q in zip(outs[0], o)) for o in outs[1:]]
    res["equal"][name] = eq
    print(f"{name}: bit for bit the same as {variants[0][0]}: {dict(zip([v[0] for v in variants[1:]], eq))}", flush=True)
    if name == "odd":
        continue
    h, a = outs[0]
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    rep = 1000 if d == 4096 else 400
    for rnd in range(3):
        for vname, m, regs in variants + [("cuBLAS", None, None)]:
            f = (lambda: torch.mm(A_, B_)) if m is None else (lambda: run(m, regs, x, w1, r, h, a))
            ms = do_bench(f, warmup=25, rep=rep)
            print(f"{name} {vname} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
            res["timing"].append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3))
json.dump(res, open(sys.argv[2], "w"), indent=1)
