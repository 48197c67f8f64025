"""The gathered rows in dA' and the up-projection (the Hopper kernels, parts), by a proxy and a change:
- window: the tree's kernel with every gathered row taken from the first W tokens (8 MiB of rows, so they stay in L2):
  the same instructions and requests, the rows' DRAM bytes and latency gone (outputs not compared);
- pfP: the producer also prefetches the gathered rows into L2 by bulk prefetches (cp.async.bulk.prefetch.L2), one a
  row, in the form the module at VARIANT holds, with SK_PF=P: every step the columns it will copy P steps later
  (`per_step.patch.txt`), or every P steps the next P steps' columns, P steps ahead (`chunked.patch.txt`). Outputs
  compared bit for bit with the tree's.
dA''s 256-column items run at registers 160 / 152 / 40 in every variant here ("tree40" is the tree's kernel at that
split; the prefetch spills 8 bytes under Triton 3.6 at 160 / 160 / 32). Timed in three alternating rounds, cuBLAS beside.
usage: pfab.py VARIANT OUT.json (VARIANT "-": the tree's kernels and the window alone)"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk


def load(path, tag, pf):
    src = open(path).read().replace('"sonic::', f'"{tag}::').replace("torch.ops.sonic", f"torch.ops.{tag}")
    p = os.path.join(tempfile.mkdtemp(), f"sk_{tag}.py")
    open(p, "w").write(src)
    os.environ["SK_PF"] = str(pf)
    spec = importlib.util.spec_from_file_location(f"sk_{tag}", p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


MODS = {"tree": sk} if sys.argv[1] == "-" else {"tree": sk, "pf4": load(sys.argv[1], "sonicpf4", 4),
                                                 "pf8": load(sys.argv[1], "sonicpf8", 8)}
SPLIT40 = dict(CONSUMER_REGS=160, EPILOGUE_REGS=152, PRODUCER_REGS=40)
for m in MODS.values():
    if m is not sk:
        m.DB_WIDE_CONFIG = {**m.DB_WIDE_CONFIG, **SPLIT40}


def db(m, split40, dO, w2, h, r, dH, Ap):
    saved = m.DB_WIDE_CONFIG
    if split40:
        m.DB_WIDE_CONFIG = {**saved, **SPLIT40}
    try:
        return m._down_bwd_hopper(dO, w2, h, r, dH, Ap)
    finally:
        m.DB_WIDE_CONFIG = saved


SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    W = (8 << 20) // (2 * d)
    rw = r._replace(gather_idx=r.gather_idx % W)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    hin = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dH, Ap = torch.empty_like(hin), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    h, a = torch.empty_like(hin), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    runs = {  # name: (kernel, call)
        "dA' tree": lambda: db(sk, False, x, w2, hin, r, dH, Ap),
        "dA' tree40": lambda: db(sk, True, x, w2, hin, r, dH, Ap),
        "dA' pf4": lambda: db(MODS["pf4"], True, x, w2, hin, r, dH, Ap),
        "dA' pf8": lambda: db(MODS["pf8"], True, x, w2, hin, r, dH, Ap),
        "dA' window": lambda: db(sk, True, x, w2, hin, rw, dH, Ap),
        "up tree": lambda: sk._up_hopper(x, w1, r, h, a),
        "up pf4": lambda: MODS["pf4"]._up_hopper(x, w1, r, h, a),
        "up pf8": lambda: MODS["pf8"]._up_hopper(x, w1, r, h, a),
        "up window": lambda: sk._up_hopper(x, w1, rw, h, a),
    }
    runs = {k: f for k, f in runs.items() if k.split()[1] in MODS or "pf" not in k}
    same = {}
    for kern, ref_name in (("dA'", "dA' tree40"), ("up", "up tree")) if len(MODS) > 1 else ():
        ref = runs[ref_name]()
        ref = [t.clone() for t in ((dH, Ap, ref) if kern == "dA'" else (h, a))]
        for v in ("pf4", "pf8"):
            got = runs[f"{kern} {v}"]()
            got = (dH, Ap, got) if kern == "dA'" else (h, a)
            same[f"{kern} {v}"] = all(torch.equal(p, q) for p, q in zip(ref, got))
    torch.cuda.synchronize()
    times = {k: [] for k in runs}
    for rnd in range(3):
        for k, fn in runs.items():
            times[k].append(do_bench(fn, warmup=10, rep=200) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    cub = {"dA'": do_bench(lambda: torch.mm(A_, w2[0].t().contiguous()), warmup=10, rep=200) * 1e3,
           "up": do_bench(lambda: torch.mm(A_, w1[0]), warmup=10, rep=200) * 1e3}
    del A_
    print(f"{name:5s} W={W} cuBLAS", {k: round(v, 1) for k, v in cub.items()}, "us; bit for bit:", same, flush=True)
    for k, t in times.items():
        c = cub[k.split()[0]]
        print(f"    {k:12s} us " + " ".join(f"{v:7.1f}" for v in t) + f"   of cuBLAS (best) {c / min(t):.2f}", flush=True)
    out.append(dict(shape=name, W=W, bit_identical=same, us=times, cublas_us=cub))
    del r, rw, x, w1, w2, hin, dH, Ap, h, a
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
