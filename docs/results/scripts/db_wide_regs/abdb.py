"""dA' (down_bwd, a part) on sm_90 with its 256-column items at several register splits of DB_WIDE_CONFIG
(consumer / epilogue / producer), outputs compared bit for bit with the tree's split, timed in alternating rounds
(three) beside cuBLAS on a dense GEMM of its size, at h200_moe's layer shape and the README's four. Under Triton 3.9
the tree's 160 / 160 / 32 spills 24 bytes; 160 / 152 / 40 and 168 / 136 / 40 spill nothing under 3.6 to 3.9
(sweep.py).
usage: abdb.py OUT.json"""
import json, sys
import torch
from triton.testing import do_bench
import triton
import sonic_kernels as sk

TREE = dict(sk.DB_WIDE_CONFIG)
SPLITS = {"tree": (TREE["CONSUMER_REGS"], TREE["EPILOGUE_REGS"], TREE["PRODUCER_REGS"]),
          "160/152/40": (160, 152, 40), "168/136/40": (168, 136, 40)}
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
bf = dict(device="cuda", dtype=torch.bfloat16)
print(f"triton {triton.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)


def use(split):
    c, e, p = SPLITS[split]
    sk.DB_WIDE_CONFIG = {**TREE, "CONSUMER_REGS": c, "EPILOGUE_REGS": e, "PRODUCER_REGS": p}


out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    dO, h = torch.randn(T, d, **bf), torch.randn(R, 2 * n, **bf)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    res = {}
    for s in SPLITS:
        use(s)
        res[s] = sk.down_bwd(dO, w2, h, r)
    same = {s: all(torch.equal(p, q) for p, q in zip(res["tree"], res[s])) for s in SPLITS if s != "tree"}
    del res
    times = {s: [] for s in SPLITS}
    for rnd in range(3):
        for s in SPLITS:
            use(s)
            times[s].append(do_bench(lambda: sk.down_bwd(dO, w2, h, r), warmup=10, rep=150) * 1e3)
    A_, B_ = torch.randn(R, d, **bf), torch.randn(d, n, **bf)
    cub = min(do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=150) for _ in range(2)) * 1e3
    del A_, B_
    print(f"{name:9s} dA' cuBLAS {cub:7.1f} us; bit-identical to the tree's split: {same}", flush=True)
    for s, t in times.items():
        print(f"    {s:10s} us " + " ".join(f"{u:7.1f}" for u in t) + f"   cuBLAS / best {cub / min(t):.3f}", flush=True)
    out.append(dict(shape=name, bit_identical=same, us=times, cublas_us=cub))
use("tree")
json.dump(dict(triton=triton.__version__, rows=out), open(sys.argv[1], "w"), indent=1)
