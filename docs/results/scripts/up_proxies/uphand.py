"""Where the up-projection's hand-over costs (timing proxies; their h and a are wrong by design): patched copies of
sonic_kernels whose up-projection (the Hopper kernel, a part) drops one piece of the consumers' hand-over to the
epilogue warpgroup, timed in alternating rounds by do_bench against the tree's, beside cuBLAS on a dense GEMM of its
size. Variants:
- "no turn wait": the consumers never wait for the epilogue to have read the buffer (they overwrite it at will), nor
  the epilogue for them: each runs at its own pace;
- "epilogue idle": the epilogue warpgroup hands each half back as soon as it is ready, with no loads, math or stores;
- "no stores": the epilogue's stores of h and a predicated off (as upproxies.py).
usage: uphand.py OUT.json [SHAPE ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SRC = open(sk.__file__).read()


def patched(name, no_wait=False, idle=False, no_st=False):
    s = SRC
    if no_wait:
        # and the epilogue never waits for the consumers either: the two run apart (a barrier waited on after it
        # has moved two phases on would hang the epilogue)
        for old in ("                mbarrier.wait(epi_empty.index(1), (ti & 1) ^ 1)\n",
                    "                mbarrier.wait(epi_empty.index(0), ti & 1)\n",
                    "                mbarrier.wait(epi_ready.index(HH), ti & 1)\n"):
            assert s.count(old) == 1
            s = s.replace(old, "                pass\n")
    if idle:
        a, b = s.index("    def _up_epilogue("), s.index("    def _up_consumer0(")
        body = s[a:b]
        old = "                for q in gl.static_range(PER_HALF):\n"
        assert body.count(old) == 1
        body = body.replace(old, "                for q in gl.static_range(0):\n")
        s = s[:a] + body + s[b:]
    if no_st:
        a, b = s.index("    def _up_epilogue("), s.index("    def _up_consumer0(")
        body = s[a:b]
        assert body.count("mask=mask)") == 3
        body = body.replace("mask=mask)", "mask=mask & (rows < 0)[:, None])")
        s = s[:a] + body + s[b:]
    path = os.path.join(tempfile.mkdtemp(), f"sk_{name}.py")
    open(path, "w").write(s.replace('"sonic::', f'"sonic{name}::').replace("torch.ops.sonic", f"torch.ops.sonic{name}"))
    spec = importlib.util.spec_from_file_location(f"sk_{name}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


ALL = {"tree": None, "no turn wait": dict(no_wait=True), "epilogue idle": dict(idle=True),
       "no stores": dict(no_st=True), "no turn wait, epilogue idle": dict(no_wait=True, idle=True)}
VARIANTS = {v: (sk if kw is None else patched(f"h{i}", **kw)) for i, (v, kw) in enumerate(ALL.items())}
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name in sys.argv[2:] or SHAPES:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    fns = {v: (lambda m=m: m._up_hopper(x, w1, r, h, a)) for v, m in VARIANTS.items()}
    for f in fns.values():   # each compiles, and none hangs
        f()
    torch.cuda.synchronize()
    times = {v: [] for v in fns}
    for rnd in range(3):
        for v, f in fns.items():
            times[v].append(do_bench(f, warmup=10, rep=150) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=150) * 1e3
    del A_, B_
    print(f"{name:5s} cuBLAS {cub:7.1f} us", flush=True)
    for v, t in times.items():
        print(f"    {v:28s} us " + " ".join(f"{q:7.1f}" for q in t) + f"   cuBLAS / best {cub / min(t):.2f}", flush=True)
    out.append(dict(shape=name, us=times, cublas_us=cub))
    del r, x, w1, h, a
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
