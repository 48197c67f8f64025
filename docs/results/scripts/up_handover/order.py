"""The order of the Hopper kernels' work items (row tile, N chunk): the tree's, every N chunk of a tile in
turn, against groups of ITEM_GROUP tiles walked N chunk by N chunk, so that the programs running at once
share fewer weight blocks (a copy of sonic_kernels with _db_item grouped, its ops renamed). The
up-projection, dA' and the grouped GEMM (y) at 30B and 120B, alternating rounds; outputs must be equal.
usage: order.py OUT.json"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sk.__file__).read()
old = """    def _db_item(item, num_n, tile_expert, tile_row0, offsets):
        t = item // num_n
        e = gl.load(tile_expert + t)
        return e, gl.load(tile_row0 + t), gl.load(offsets + e + 1), item % num_n"""
new = """    def _db_item(item, num_n, tile_expert, tile_row0, offsets, n_items):
        GROUP: gl.constexpr = ITEM_GROUP
        n_tiles = n_items // num_n
        g0 = (item // (GROUP * num_n)) * GROUP
        gsz = gl.minimum(n_tiles - g0, GROUP)
        r = item - g0 * num_n
        t = g0 + r % gsz
        e = gl.load(tile_expert + t)
        return e, gl.load(tile_row0 + t), gl.load(offsets + e + 1), r // gsz"""
assert src.count(old) == 1
src = src.replace(old, new).replace("_db_item(item, num_n, tile_expert, tile_row0, offsets)",
                                    "_db_item(item, num_n, tile_expert, tile_row0, offsets, n_items)")
src = src.replace("    UP_CHUNK = gl.constexpr(16)", "    UP_CHUNK = gl.constexpr(16)\n    ITEM_GROUP = gl.constexpr(int(os.environ['ITEM_GROUP']))")
mods = {"tree": sk}
tmp = tempfile.mkdtemp()
for g in (8, 16, 32):
    os.environ["ITEM_GROUP"] = str(g)
    ns = f"sonicorder{g}"
    path = os.path.join(tmp, f"sk_order{g}.py")
    open(path, "w").write(src.replace('"sonic::', f'"{ns}::').replace("torch.ops.sonic", f"torch.ops.{ns}"))
    spec = importlib.util.spec_from_file_location(f"sk_order{g}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    mods[f"group{g}"] = m

def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

SHAPES = {"30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    fl = 2 * R * n * d
    jobs = {"up": (lambda m: m.up_swiglu(x, w1, r), 2 * fl), "dA'": (lambda m: m.down_bwd(dout, w2, h, r), fl),
            "y": (lambda m: m.grouped_mm(a, w2, r), fl)}
    for job, (f, flops) in jobs.items():
        ref = None
        for rnd in range(2):
            for mname, m in mods.items():
                got = f(m)
                if ref is None:
                    ref = got
                eq = all(torch.equal(p, q) for p, q in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)))
                ms = do_bench(lambda: f(m), warmup=10, rep=150)
                print(f"{name} {job} {mname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS equal {eq}", flush=True)
                out.append(dict(shape=name, job=job, order=mname, round=rnd, us=ms * 1e3, equal=eq))
    del r, x, w1, w2, h, a, dout
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
