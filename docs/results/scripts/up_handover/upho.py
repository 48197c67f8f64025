"""The Gluon up-projection's hand-over buffer: both consumers' halves at once (HANDOVER=2, 3 stages, the
config before) against one half at a time (HANDOVER=1), which leaves room for a 4th stage. Checks each
variant against the Triton kernel (h bit for bit) and float64 with 1 to 3 programs walking many items; times
them in alternating rounds at h200_moe's layer shape and the paper's four, beside cuBLAS on a dense GEMM of
the same size (a part); then times the kernel with parts of its work taken out (a copy of sonic_kernels
with the epilogue's stores masked off and/or the consumers' MMAs left out), to see what sets its pace.
usage: upho.py OUT.json [parts]. It ran on the kernel with a HANDOVER switch, since reduced to HANDOVER=1, and
its parts section runs in both invocations (docs/results/up_handover/README.md)."""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

def routing(T, E, K, empty_last=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    if empty_last:
        logits[:, -1] = -float("inf")
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()

BASE = dict(sk.UP_CONFIG)
VARIANTS = {"ho2s3": dict(HANDOVER=2, STAGES=3), "ho1s4": dict(HANDOVER=1, STAGES=4), "ho1s3": dict(HANDOVER=1, STAGES=3)}
out = []
real_np = sk._n_programs
if "parts" not in sys.argv:
    torch.manual_seed(0)
    for (T, d, n, E, K) in [(300, 48, 32, 4, 2), (700, 320, 160, 6, 2), (2049, 512, 256, 32, 8), (777, 1536, 384, 8, 2)]:
        r = routing(T, E, K, empty_last=True)
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        gi, off = r.gather_idx.long(), r.offsets.tolist()
        want = torch.cat([x.double()[gi[off[e]:off[e + 1]]] @ w1[e].double() for e in range(E)])
        sk.HOPPER_UP = False
        ht, at = sk.up_swiglu(x, w1, r)
        sk.HOPPER_UP = None
        for vname, v in VARIANTS.items():
            sk.UP_CONFIG = {**BASE, **v}
            for n_prog in (None, 1, 3):
                sk._n_programs = real_np if n_prog is None else (lambda device, work, k=n_prog: k)
                h, a = sk.up_swiglu(x, w1, r)
                torch.cuda.synchronize()
                e = dict(h_f64=rel(h, want), a_triton=rel(a, at), h_equal=float(torch.equal(h, ht)))
                print(f"check {(T, d, n, E, K)} {vname} programs {n_prog}: " + " ".join(f"{k} {v:.1e}" for k, v in e.items()), flush=True)
                out.append(dict(check=(T, d, n, E, K), variant=vname, n_prog=n_prog, **e))
            sk._n_programs = real_np
    sk.UP_CONFIG = BASE
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}

def time_shapes(names, variants, rounds, cublas=True):
    for name in names:
        T, d, n, E, K = SHAPES[name]
        r = routing(T, E, K)
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        flops = 2 * T * K * 2 * n * d
        ref = None
        for rnd in range(rounds):
            for vname, (mod, cfg) in variants.items():
                mod.UP_CONFIG = cfg
                f = lambda: mod.up_swiglu(x, w1, r)
                got = f()
                if ref is None:
                    ref = got
                eq = torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
                ms = do_bench(f, warmup=10, rep=150)
                print(f"{name} {vname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS equal {eq}", flush=True)
                out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3, equal=eq))
        if cublas:
            a_ = torch.randn(T * K, d, device="cuda", dtype=torch.bfloat16)
            b_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
            ms = do_bench(lambda: torch.mm(a_, b_), warmup=10, rep=150)
            print(f"{name} cuBLAS dense ({T * K}x{d}) @ ({d}x{2 * n}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(shape=name, variant="cublas", us=ms * 1e3))
        del r, x, w1
        torch.cuda.empty_cache()

if "parts" not in sys.argv:
    time_shapes(list(SHAPES), {k: (sk, {**BASE, **v}) for k, v in VARIANTS.items()}, 3)
    json.dump(out, open(sys.argv[1], "w"), indent=1)

# parts: a copy of sonic_kernels with switches in the up-projection (its ops renamed, so that the copies load beside it)
src = open(sk.__file__).read()
def swap(old, new):
    global src
    assert src.count(old) == 1, old
    src = src.replace(old, new)
swap("    UP_CHUNK = gl.constexpr(16)", "    UP_CHUNK = gl.constexpr(16)\n    UP_STORE = gl.constexpr(int(os.environ.get('UP_STORE', '1')))\n    UP_MMA = gl.constexpr(int(os.environ.get('UP_MMA', '1')))")
swap("                    mask = (rows < row_end)[:, None] & mcol", "                    mask = (rows < row_end * UP_STORE)[:, None] & mcol")
swap("""                acc_g = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s), acc_g, is_async=True)
                acc_u = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s + 1), acc_u, is_async=True)
                # this step's two MMAs in flight: the last step's are done, so its buffers go back
                acc_g, acc_u = warpgroup_mma_wait(num_outstanding=2, deps=(acc_g, acc_u))""",
"""                if UP_MMA:
                    acc_g = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s), acc_g, is_async=True)
                    acc_u = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s + 1), acc_u, is_async=True)
                    acc_g, acc_u = warpgroup_mma_wait(num_outstanding=2, deps=(acc_g, acc_u))""")
swap("""            acc_g, acc_u = warpgroup_mma_wait(num_outstanding=0, deps=(acc_g, acc_u))
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            # the epilogue""", """            if UP_MMA:
                acc_g, acc_u = warpgroup_mma_wait(num_outstanding=0, deps=(acc_g, acc_u))
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            # the epilogue""")
mods = {}
tmp = tempfile.mkdtemp()
for store, mma in [(1, 1), (0, 1), (1, 0), (0, 0)]:
    os.environ["UP_STORE"], os.environ["UP_MMA"] = str(store), str(mma)
    path = os.path.join(tmp, f"sk_parts_{store}{mma}.py")
    ns = f"sonicparts{store}{mma}"
    open(path, "w").write(src.replace('"sonic::', f'"{ns}::').replace("torch.ops.sonic", f"torch.ops.{ns}"))
    spec = importlib.util.spec_from_file_location(f"sk_parts_{store}{mma}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    mods[f"store{store}_mma{mma}"] = m
variants = {}
for vname in ("ho2s3", "ho1s4"):
    for k, m in mods.items():
        variants[f"{vname} {k}"] = (m, {**BASE, **VARIANTS[vname]})
out.clear()
time_shapes(["7B", "120B"], variants, 2, cublas=False)
json.dump(out, open(sys.argv[1].replace(".json", "_parts.json"), "w"), indent=1)
