"""The up-projection and dA' (the Hopper kernels, parts) under the routing bench.py times (random scores' top-K) and
under a balanced one (every expert exactly T*K/E rows, each token's K experts distinct, E/K apart from a random
base), beside cuBLAS on a dense GEMM of each kernel's size: how much the row tiles that end part-full at each
expert's end, and the programs' last round, cost the grouped kernels against a dense GEMM. Three alternating
rounds. usage: balanced.py OUT.json [SHAPE ...]; an OUT name with "relabel" in it relabels the balanced routing's
experts at random."""
import json, math, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
SMS = torch.cuda.get_device_properties(0).multi_processor_count
out = []
for name in sys.argv[2:] or list(SHAPES):
    T, d, n, E, K = SHAPES[name]
    R = T * K
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    base = torch.randperm(T, device="cuda", generator=g) % E
    bal = (base[:, None] + torch.arange(K, device="cuda")[None, :] * (E // K)) % E
    if "relabel" in sys.argv[1]:
        # tokens of one base share all K experts: relabelled at random, those experts are not neighbours in the
        # kernels' expert order, so concurrent tiles share tokens about as often as under random routing
        bal = torch.randperm(E, device="cuda", generator=g)[bal]
    score = torch.softmax(top, -1).flatten()
    routes = {}
    for rname, ix in (("random", idx), ("balanced", bal)):
        r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), ix.flatten(), score, T, E)
        cnt = torch.bincount(ix.flatten(), minlength=E)
        items = {"dA'": int(((cnt + 127) // 128).sum()) * math.ceil(n / sk._db_config(n)["BLOCK_N"]),
                 "up": int(((cnt + 127) // 128).sum()) * math.ceil(n / sk.UP_CONFIG["BLOCK_N"])}
        routes[rname] = (r, items)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    hh, a = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    dH, Ap = torch.empty_like(h), torch.empty_like(a)
    fns = {}
    for rname, (r, _) in routes.items():
        fns[("up", rname)] = lambda r=r: sk._up_hopper(x, w1, r, hh, a)
        fns[("dA'", rname)] = lambda r=r: sk._down_bwd_hopper(dO, w2, h, r, dH, Ap)
    times = {k: [] for k in fns}
    for rnd in range(3):
        for k, f in fns.items():
            times[k].append(do_bench(f, warmup=10, rep=200) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    cub = {"up": do_bench(lambda: torch.mm(A_, w1[0]), warmup=10, rep=200) * 1e3,
           "dA'": do_bench(lambda: torch.mm(A_, w2[0].T), warmup=10, rep=200) * 1e3}
    del A_
    for kern in ("up", "dA'"):
        line = f"{name:9s} {kern:4s} cuBLAS {cub[kern]:7.1f} us"
        for rname, (_, items) in routes.items():
            t = times[(kern, rname)]
            line += (f" | {rname} items {items[kern]} ({items[kern] / SMS:.2f} a program) us "
                     + " ".join(f"{v:7.1f}" for v in t) + f" ratio {cub[kern] / min(t):.2f}")
        print(line, flush=True)
    out.append(dict(shape=name, cublas_us=cub, us={f"{k[0]} {k[1]}": v for k, v in times.items()},
                    items={rn: it for rn, (_, it) in routes.items()}))
    del routes, fns, x, w1, w2, dO, h, hh, a, dH, Ap
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
