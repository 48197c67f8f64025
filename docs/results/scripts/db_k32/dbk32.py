"""dA' with more of its ring in flight. 32-column k steps: twice the stages of half the bytes, so that a consumer
hands each back after half the time (wide items: 5 of 6 stages of 24 KB in flight, 120 KB, against 2 of 3 stages of
48 KB, 96 KB; 128-column items: 7 of 8 of 16 KB against 3 of 4 of 32 KB). The hand-over one consumer at a time
(HALVES, as the up-projection's): half the buffer, so one more 24 KB stage (wide: 6 of 7, 144 KB). Two stages
against three took 7-55% longer (2026-12-03), so the ring's bytes in flight pace a short item. The kernel of commit
888e4a8; every variant's outputs must equal its width's tree config bit for bit. Alternating rounds, five shapes.
The kernel options it sets (BLOCK_K and HALVES in DB_CONFIG / DB_WIDE_CONFIG) were taken out after it ran: it
runs in a checkout of commit 888e4a8, whose GPU test `test_hopper_down_bwd_ring_variants_give_the_same_bits` checks
the variants' bits. Result (2026-12-03, docs/results/dA_order/dbk32.log): every variant slower at every shape.
usage: dbk32.py OUT.json"""
import json, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

WIDE, NARROW = dict(sk.DB_WIDE_CONFIG), dict(sk.DB_CONFIG)
VARIANTS = {"wide k64 s3 (tree)": (True, {}), "wide k32 s6": (True, dict(BLOCK_K=32, STAGES=6)),
            "wide k64 s3 halves": (True, dict(HALVES=True)),
            "wide k32 s7 halves": (True, dict(BLOCK_K=32, STAGES=7, HALVES=True)),
            "narrow k64 s4": (False, {}), "narrow k32 s8": (False, dict(BLOCK_K=32, STAGES=8)),
            "narrow k32 s10 halves": (False, dict(BLOCK_K=32, STAGES=10, HALVES=True))}


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(None, idx.flatten().int(), torch.softmax(top, -1).flatten(), T, E)


def configure(wide, change):
    sk.DB_WIDE = wide
    sk.DB_WIDE_CONFIG = dict(WIDE, **change) if wide else WIDE
    sk.DB_CONFIG = NARROW if wide else dict(NARROW, **change)


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
    refs = {}
    for wide in (True, False):
        configure(wide, {})
        refs[wide] = [t.clone() for t in sk.down_bwd(dout, w2, h, r)]
    for rnd in range(2):
        for vname, (wide, change) in VARIANTS.items():
            configure(wide, change)
            got = sk.down_bwd(dout, w2, h, r)
            eq = all(torch.equal(p, q) for p, q in zip(got, refs[wide]))
            ms = do_bench(lambda: sk.down_bwd(dout, w2, h, r), warmup=10, rep=150)
            print(f"{name} dA' {vname:22s} round {rnd}: {ms * 1e3:7.1f} us {fl / ms / 1e9:5.0f} TFLOPS equal {eq}",
                  flush=True)
            out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3, equal=eq))
    configure(None, {})
    del r, w2, h, dout
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
