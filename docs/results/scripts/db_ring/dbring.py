"""dA''s wide items (DB_WIDE_CONFIG) with fewer stages and a deeper ring of h chunks for the epilogue: the
tree's 3 stages and 2 chunks (one chunk's copies in flight while the epilogue works on the other), against
2 stages with 4 or 8 chunks (the same 224 KB of shared memory). If the epilogue waits on h's round trips,
more chunks in flight shorten it where the reduction is short (d = 768, 1536); one stage less may slow the
MMAs where it is long (d = 4096). Alternating rounds; the outputs must equal the tree's.
usage: dbring.py OUT.json"""
import json, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

TREE = dict(sk.DB_WIDE_CONFIG)
VARIANTS = {"s3n2 (tree)": {}, "s2n4": dict(STAGES=2, NBUF=4), "s2n8": dict(STAGES=2, NBUF=8)}


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(None, idx.flatten().int(), torch.softmax(top, -1).flatten(), T, E)


SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8),
          "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    R = T * K
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    fl = 2 * R * n * d
    ref = None
    for rnd in range(3):
        for vname, v in VARIANTS.items():
            sk.DB_WIDE_CONFIG.clear()
            sk.DB_WIDE_CONFIG.update(TREE, **v)
            got = sk.down_bwd(dout, w2, h, r)
            if ref is None:
                ref = [t.clone() for t in got]
            eq = all(torch.equal(p, q) for p, q in zip(got, ref))
            ms = do_bench(lambda: sk.down_bwd(dout, w2, h, r), warmup=10, rep=150)
            print(f"{name} dA' {vname:12s} round {rnd}: {ms * 1e3:7.1f} us {fl / ms / 1e9:5.0f} TFLOPS equal {eq}",
                  flush=True)
            out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3, equal=eq))
    del r, w2, h, dout
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
