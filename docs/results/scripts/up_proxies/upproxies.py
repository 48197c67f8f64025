"""Whether the up-projection's epilogue stores cost it through the producer's gathered copies (both on the LSU path):
patched copies of sonic_kernels whose up-projection (the Hopper kernel, a part) reads X differently or stores nothing,
timed in alternating rounds by do_bench against the tree's, beside cuBLAS on a dense GEMM of its size.
Variants:
- "dense cp.async": X's rows read in order from an (R, d) tensor by the same cp.async copies (the identity gather);
- "dense TMA": the same rows by TMA, two 64 x 64 boxes a stage on the stage's TMA barrier, as cuBLAS reads its A
  (compared bit for bit with "dense cp.async", which reads the same rows);
- "no stores": the epilogue's stores of h and a predicated off (its loads from the hand-over buffer, its math and
  the hand-over kept); "dense cp.async, no stores", "dense TMA, no stores": both.
The proxies' outputs are wrong or absent by design; only the dense pair is compared.
usage: upproxies.py OUT.json [SHAPE ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SRC = open(sk.__file__).read()


def patched(name, dense_tma=False, no_st=False):
    s = SRC
    if dense_tma:
        # X as a dense (R, d) tensor by TMA in the producer (the up-projection's path only)
        old = "                _ws_copy_gathered(g_smem, s, ready_c, a0, a1, m0, m1, k0 + ks, D)\n"
        new = ("                if UP:\n"
               "                    _tma_load(a_desc, [row0, k0], ready_t.index(s), g_smem.index(2 * s))\n"
               "                    _tma_load(a_desc, [row0 + HALF, k0], ready_t.index(s), g_smem.index(2 * s + 1))\n"
               "                    gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)\n"
               "                else:\n    " + old)
        assert s.count(old) == 1
        s = s.replace(old, new)
        old = "                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)\n"
        assert s.count(old) == 1
        # (this copy's dA' is never run: its producer would expect bytes that never come)
        s = s.replace(old, "                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES + 2 * HALF * BLOCK_K * 2)\n")
        old = "                    N, D, stride_at, num_n, n_items, UP: gl.constexpr):\n"
        assert s.count(old) == 1
        s = s.replace(old, "                    N, D, stride_at, num_n, n_items, UP: gl.constexpr, a_desc=None):\n")
        old = "                 N, D, stride_xt, num_n, n_items, True)\n"
        assert s.count(old) == 1
        s = s.replace(old, "                 N, D, stride_xt, num_n, n_items, True, a_desc)\n")
        old = "        w_desc = gl_tma.make_tensor_descriptor(W1, shape=[E * D, 2 * N], strides=[2 * N, 1],\n"
        assert s.count(old) == 1
        s = s.replace(old, "        a_desc = gl_tma.make_tensor_descriptor(X, shape=[RX, D], strides=[stride_xt, 1], block_shape=[HALF, BLOCK_K], layout=g_layout)\n" + old)
        old = "        N, D, E, stride_xt, stride_hr, stride_ar,\n        BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr, NB: gl.constexpr,\n        CONSUMER_REGS: gl.constexpr, EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr,\n"
        assert s.count(old) == 1
        s = s.replace(old, old.replace("stride_ar,\n", "stride_ar, RX,\n", 1))
        old = "        a.stride(0), BLOCK_M=BLOCK_M, NB=next_pow2(E), num_warps=4, **UP_CONFIG)\n"
        assert s.count(old) == 1
        s = s.replace(old, "        a.stride(0), x.shape[0], BLOCK_M=BLOCK_M, NB=next_pow2(E), num_warps=4, **UP_CONFIG)\n")
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


# name: (the patch's switches, dense X): the dense forms read X as R rows in order (the identity gather)
ALL = {"tree": (None, False), "dense cp.async": (None, True), "dense TMA": (dict(dense_tma=True), True),
       "no stores": (dict(no_st=True), False), "dense cp.async, no stores": (dict(no_st=True), True),
       "dense TMA, no stores": (dict(dense_tma=True, no_st=True), True)}
VARIANTS = {v: (sk if ALL[v][0] is None else patched(f"v{i}", **ALL[v][0]), ALL[v][1]) for i, v in enumerate(ALL)}
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
    dense = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    rd = r._replace(gather_idx=torch.arange(R, device="cuda", dtype=r.gather_idx.dtype))
    h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    fns = {v: (lambda m=m, dn=dn: m._up_hopper(dense if dn else x, w1, rd if dn else r, h, a))
           for v, (m, dn) in VARIANTS.items()}
    fns["tree"]()
    h_ref, a_ref = h.clone(), a.clone()
    fns["dense cp.async"]()
    hd, ad = h.clone(), a.clone()
    h.zero_(); a.zero_()
    fns["dense TMA"]()
    same = {"dense TMA vs dense cp.async": [torch.equal(hd, h), torch.equal(ad, a)]}
    # the tree against fp32 torch on its first expert's rows: a check that the timed kernel is the real one
    e0 = int(r.offsets[1])
    ref = x[r.gather_idx[:e0].long()].float() @ w1[0].float()
    same["tree vs fp32, expert 0, relative"] = ((h_ref[:e0].float() - ref).norm() / ref.norm()).item()
    del hd, ad, ref
    times = {v: [] for v in fns}
    for rnd in range(3):
        for v, f in fns.items():
            times[v].append(do_bench(f, warmup=10, rep=150) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=150) * 1e3
    del A_, B_
    print(f"{name:5s} cuBLAS {cub:7.1f} us; checks: {same}", flush=True)
    for v, t in times.items():
        print(f"    {v:26s} us " + " ".join(f"{q:7.1f}" for q in t) + f"   cuBLAS / best {cub / min(t):.2f}", flush=True)
    out.append(dict(shape=name, checks=same, us=times, cublas_us=cub))
    del r, rd, x, w1, dense, h, a, h_ref, a_ref
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
