"""dA' with 32-column k steps: twice the stages of half the bytes, so that a consumer hands each back after half
the time and more of the ring is in flight (wide items: 5 of 6 stages of 24 KB, 120 KB, against 2 of 3 stages of
48 KB, 96 KB; 128-column items: 7 of 8 of 16 KB against 3 of 4 of 32 KB). Two stages against three took 7-55%
longer (2026-12-03), so the ring's bytes in flight pace a short item. A copy of sonic_kernels whose producer's
cp.async layout covers BLOCK_K columns (8 columns a thread: BLOCK_K / 8 threads a row), its ops renamed; the tree's
config in it must give the tree's outputs. Alternating rounds, five shapes.
usage: dbk32.py OUT.json"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sk.__file__).read()
old = ("        TILE_BYTES: gl.constexpr = w_smem.type.shape[1] * w_smem.type.shape[2] * w_smem.type.element_ty.primitive_bitwidth // 8\n"
       "        layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [WG_PRODUCER_WARPS, 1], [1, 0])\n")
new = (old.split("\n")[0] + "\n        TPR: gl.constexpr = BLOCK_K // 8\n"
       "        layout: gl.constexpr = gl.BlockedLayout([1, 8], [32 // TPR, TPR], [WG_PRODUCER_WARPS, 1], [1, 0])\n")
assert src.count(old) == 1
src = src.replace(old, new).replace('"sonic::', '"sonick32::').replace("torch.ops.sonic", "torch.ops.sonick32")
path = os.path.join(tempfile.mkdtemp(), "sk_k32.py")
open(path, "w").write(src)
spec = importlib.util.spec_from_file_location("sk_k32", path)
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)

WIDE, NARROW = dict(m.DB_WIDE_CONFIG), dict(m.DB_CONFIG)
VARIANTS = {"wide k64 s3 (tree)": (True, WIDE), "wide k32 s6": (True, dict(WIDE, BLOCK_K=32, STAGES=6)),
            "narrow k64 s4": (False, NARROW), "narrow k32 s8": (False, dict(NARROW, BLOCK_K=32, STAGES=8))}


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(None, idx.flatten().int(), torch.softmax(top, -1).flatten(), T, E)


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


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
    tree = [t.clone() for t in sk.down_bwd(dout, w2, h, r)]
    refs = {}
    for rnd in range(3):
        for vname, (wide, cfg) in VARIANTS.items():
            m.DB_WIDE = wide
            target = m.DB_WIDE_CONFIG if wide else m.DB_CONFIG
            target.clear()
            target.update(cfg)
            got = m.down_bwd(dout, w2, h, r)
            eq = all(torch.equal(p, q) for p, q in zip(got, tree))
            if not wide:   # the 128-column items hand over fp32: their own reference is the k64 run
                refs.setdefault(rnd, [t.clone() for t in got])
                eq = all(torch.equal(p, q) for p, q in zip(got, refs[rnd]))
            err = max(rel(p, q) for p, q in zip(got, tree))
            ms = do_bench(lambda: m.down_bwd(dout, w2, h, r), warmup=10, rep=150)
            print(f"{name} dA' {vname:18s} round {rnd}: {ms * 1e3:7.1f} us {fl / ms / 1e9:5.0f} TFLOPS equal {eq} "
                  f"rel to tree {err:.1e}", flush=True)
            out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3, equal=eq, rel_to_tree=err))
        m.DB_WIDE_CONFIG.clear(); m.DB_WIDE_CONFIG.update(WIDE)
        m.DB_CONFIG.clear(); m.DB_CONFIG.update(NARROW)
    del r, w2, h, dout
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
