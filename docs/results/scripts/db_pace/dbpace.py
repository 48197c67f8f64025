"""Whether the dA' epilogue's IO costs the main loop by its bursts: copies of sonic_kernels whose dA' epilogue
warpgroup (the Hopper kernel, a part) sleeps after each 16-row chunk (`nanosleep`, PAUSE ns, run twice a chunk: each
thread holds two of the chunk's rows), spreading its loads and stores over more of the item, timed in alternating
rounds against the tree's kernel and cuBLAS on a dense GEMM of dA''s size. At d = 4096 the epilogue waits more than
half of each item for the next (docs/LOG.md, 2026-12-04), so a pause that fits in that slack leaves its work the same
and only changes when its traffic meets the producer's copies. Outputs compared bit for bit with the tree's.
usage: dbpace.py OUT.json PAUSE,PAUSE,... [SHAPE ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SRC = open(sk.__file__).read()


def paced(ns):
    s = SRC
    a, b = s.index("    @gluon.jit\n    def _db_epilogue("), s.index("    @gluon.jit\n    def _db_consumer0(")
    body = s[a:b]
    old = "                             mask=mrow)\n"
    assert body.count(old) == 1
    body = body.replace(old, old + "                    _pause(rows)\n")
    pause = ('    @gluon.jit\n    def _pause(x):\n'
             f'        gl.inline_asm_elementwise("nanosleep.u32 {ns}; mov.u32 $0, $1;", "=r,r", [x], dtype=gl.int32,\n'
             '                                  is_pure=False, pack=1)\n\n')
    s = s[:a] + pause + body + s[b:]
    path = os.path.join(tempfile.mkdtemp(), f"sk_pace{ns}.py")
    open(path, "w").write(s.replace('"sonic::', f'"sonicpace{ns}::').replace("torch.ops.sonic", f"torch.ops.sonicpace{ns}"))
    spec = importlib.util.spec_from_file_location(f"sk_pace{ns}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


VARIANTS = [("tree", sk)] + [(f"pause {ns} ns x2", paced(ns)) for ns in map(int, sys.argv[2].split(","))]
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name in sys.argv[3:] or ["30B", "120B"]:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    ref = (sk._down_bwd_hopper(dO, w2, h, r, dH, Ap), dH.clone(), Ap.clone())
    for v, m in VARIANTS[1:]:
        got = (m._down_bwd_hopper(dO, w2, h, r, dH, Ap), dH.clone(), Ap.clone())
        print(f"{name} {v}: dS parts, dH, A' bit for bit the tree's: {[torch.equal(x, y) for x, y in zip(ref, got)]}", flush=True)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    for rnd in range(3):
        for v, m in VARIANTS + [("cuBLAS", None)]:
            f = (lambda: torch.mm(A_, B_)) if m is None else (lambda m=m: m._down_bwd_hopper(dO, w2, h, r, dH, Ap))
            ms = do_bench(f, warmup=25, rep=800)
            print(f"{name} {v} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
            out.append(dict(shape=name, variant=v, round=rnd, us=ms * 1e3))
json.dump(out, open(sys.argv[1], "w"), indent=1)
