"""The order of the tile map's tiles: the tree's (expert by expert) against token blocks (the tiles whose
first token lies in block b of B equal blocks of the tokens come before block b + 1's; expert by expert
inside a block). An expert's rows are in token order, so a block's tiles of all experts gather the same
~T/B tokens while they run: a token's K experts meet it close in time, and its gathered row is read from
L2, not DRAM, at the price of reading every expert's weights B times. No kernel changes: the permuted tile
map is passed as the Routing's. dA' (down_bwd), the up-projection and the grouped GEMM y, alternating
rounds; outputs must be equal.
usage: tokorder.py OUT.json"""
import json, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

BLOCK_M = sk.BLOCK_M


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(None, idx.flatten().int(), torch.softmax(top, -1).flatten(), T, E)


def token_blocked(r, T, B):
    # the real tiles (the surplus ones come after them) sorted stably by their first token's block
    counts = (r.offsets[1:] - r.offsets[:-1]).long()
    n_real = int(((counts + BLOCK_M - 1) // BLOCK_M).sum())
    te, tr = r.tile_expert.clone(), r.tile_row0.clone()
    blk = r.gather_idx[tr[:n_real].long()].long() * B // T
    perm = torch.sort(blk, stable=True).indices
    te[:n_real], tr[:n_real] = te[:n_real][perm], tr[:n_real][perm]
    return r._replace(tile_expert=te, tile_row0=tr)


SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8),
          "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
ORDERS = (1, 2, 4, 8, 16)
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    r0 = routing(T, E, K)
    maps = {B: (r0 if B == 1 else token_blocked(r0, T, B)) for B in ORDERS}
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    fl = 2 * R * n * d
    jobs = {"dA'": (lambda r: sk.down_bwd(dout, w2, h, r), fl), "up": (lambda r: sk.up_swiglu(x, w1, r), 2 * fl),
            "y": (lambda r: sk.grouped_mm(a, w2, r), fl)}
    for job, (f, flops) in jobs.items():
        ref = [t.clone() for t in (f(r0) if job != "y" else (f(r0),))]
        for rnd in range(2):
            for B, r in maps.items():
                got = f(r)
                got = got if isinstance(got, tuple) else (got,)
                eq = all(torch.equal(p, q) for p, q in zip(got, ref))
                ms = do_bench(lambda: f(r), warmup=10, rep=150)
                print(f"{name} {job} B={B:2d} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS equal {eq}",
                      flush=True)
                out.append(dict(shape=name, job=job, blocks=B, round=rnd, us=ms * 1e3, equal=eq))
    del r0, maps, x, w1, w2, h, a, dout
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
