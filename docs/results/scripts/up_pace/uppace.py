"""Whether the up-projection's epilogue stores cost its main loop by their bursts: copies of sonic_kernels whose
up-projection epilogue warpgroup (the Hopper kernel, a part) sleeps after each 16-row chunk of the second consumer's
half (`nanosleep`, PAUSE ns, run twice a chunk: each thread holds two of the chunk's rows). The first half is left
as it is: the second consumer waits for the hand-over buffer until it is done. At 1.4B the epilogue waits on the
consumers over half of each item (docs/LOG.md, 2026-12-04), so the pauses move its stores into that slack without
holding a consumer. Timed in alternating rounds against the tree's kernel and cuBLAS on a dense GEMM of its size;
h and a compared bit for bit with the tree's.
usage: uppace.py OUT.json PAUSE,PAUSE,... [SHAPE ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SRC = open(sk.__file__).read()


def paced(ns):
    s = SRC
    a, b = s.index("    @gluon.jit\n    def _up_epilogue("), s.index("    @gluon.jit\n    def _up_consumer0(")
    body = s[a:b]
    old = "                    gl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask)\n"
    assert body.count(old) == 1
    body = body.replace(old, old + "                    if HH == 1:\n                        _pause(rows)\n")
    pause = ('    @gluon.jit\n    def _pause(x):\n'
             f'        gl.inline_asm_elementwise("nanosleep.u32 {ns}; mov.u32 $0, $1;", "=r,r", [x], dtype=gl.int32,\n'
             '                                  is_pure=False, pack=1)\n\n')
    s = s[:a] + pause + body + s[b:]
    path = os.path.join(tempfile.mkdtemp(), f"sk_uppace{ns}.py")
    open(path, "w").write(s.replace('"sonic::', f'"sonicuppace{ns}::').replace("torch.ops.sonic", f"torch.ops.sonicuppace{ns}"))
    spec = importlib.util.spec_from_file_location(f"sk_uppace{ns}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


VARIANTS = [("tree", sk)] + [(f"pause {ns} ns x2", paced(ns)) for ns in map(int, sys.argv[2].split(","))]
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name in sys.argv[3:] or ["1.4B", "7B"]:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    h, a = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    assert sk._use_hopper_up(x, w1)
    sk._up_hopper(x, w1, r, h, a)
    ref = (h.clone(), a.clone())
    for v, m in VARIANTS[1:]:
        m._up_hopper(x, w1, r, h, a)
        print(f"{name} {v}: h, a bit for bit the tree's: {[torch.equal(p, q) for p, q in zip(ref, (h, a))]}", flush=True)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    for rnd in range(3):
        for v, m in VARIANTS + [("cuBLAS", None)]:
            f = (lambda: torch.mm(A_, B_)) if m is None else (lambda m=m: m._up_hopper(x, w1, r, h, a))
            ms = do_bench(f, warmup=25, rep=400)
            print(f"{name} {v} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
            out.append(dict(shape=name, variant=v, round=rnd, us=ms * 1e3))
    del r, x, w1, h, a, A_, B_
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
