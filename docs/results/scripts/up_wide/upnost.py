"""Where the up-projection's epilogue costs: a copy of sonic_kernels whose epilogue warpgroup stores nothing (its
stores of h and a predicated off; the consumers' hand-over through shared memory, its loads and its math kept), timed
in alternating rounds against the tree's kernel (a part) and cuBLAS on a dense GEMM of its size. Beside upwide.py's
12-warp proxy with no epilogue at all, it splits the epilogue's cost into its stores and the rest.
usage: upnost.py OUT.json"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sk.__file__).read()
a, b = src.index("    def _up_epilogue("), src.index("    def _up_consumer0(")
body = src[a:b]
assert body.count("mask=mask)") == 3
src = src[:a] + body.replace("mask=mask)", "mask=mask & (rows < 0)[:, None])") + src[b:]
path = os.path.join(tempfile.mkdtemp(), "sk_nost.py")
open(path, "w").write(src.replace('"sonic::', '"sonicnost::').replace("torch.ops.sonic", "torch.ops.sonicnost"))
spec = importlib.util.spec_from_file_location("sk_nost", path)
nost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nost)

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    rep = 1000 if d == 4096 else 400
    for rnd in range(3):
        for v, f in (("tree", lambda: sk._up_hopper(x, w1, r, h, a)), ("no stores", lambda: nost._up_hopper(x, w1, r, h, a)),
                     ("cuBLAS", lambda: torch.mm(A_, B_))):
            ms = do_bench(f, warmup=25, rep=rep)
            print(f"{name} {v} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
            out.append(dict(shape=name, variant=v, round=rnd, us=ms * 1e3))
json.dump(out, open(sys.argv[1], "w"), indent=1)
