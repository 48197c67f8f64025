"""Where dA''s time goes against cuBLAS, by proxies: patched copies of sonic_kernels whose dA' (the Hopper kernel, a
part) does less than the real one, timed in alternating rounds against the tree's, beside cuBLAS on a dense GEMM of
dA''s size. The proxies' outputs are wrong by design (not compared); the real variants' are compared with the tree's.
Proxies:
- "dense cp.async": dO's rows read in order from an (R, d) tensor by the same cp.async copies (no gather);
- "dense TMA": the same rows by TMA, two 64 x 64 boxes a stage on the stage's TMA barrier, as cuBLAS reads its A
  (compared bit for bit with "dense cp.async", which reads the same rows);
- "no epilogue IO": the epilogue's loads of h and the scores and its stores predicated off (its math and the
  hand-over kept); "no h loads" and "no stores": each half of that;
- "dense TMA, no epilogue IO": both;
- "h from L2", "stores to L2", "IO in L2": the epilogue's loads of h, its stores of dH and A', or both, each aimed at
  the program's own 64 rows and 256 columns of each half (row % 64 + 64 x program, column % 256: 64 KB of h, more
  than the L1 that shared memory leaves) instead of the item's: the same instructions and requests, served by L2 (a
  program's 64 KB stay there, 8.4 MB in all), so that few of their bytes reach DRAM.
Real variants: "h evict_first" (the epilogue's loads of h marked evict_first: h is read once, the gathered rows K
times); "all evict_first" (its stores too); "tokens B=2" (the tree's kernel with the real tiles ordered by the half
of the tokens their first row gathers, as docs/results/scripts/token_order/tokorder.py: a token's K experts closer in
time) and "tokens B=2, all evict_first".
usage: proxies.py OUT.json ["VARIANT;VARIANT;..." [SHAPE ...]]   (default: the five proxies, the README's four shapes)"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SRC = open(sk.__file__).read()


def patched(name, dense_tma=False, no_io=False, no_h=False, no_st=False, ef_h=False, ef_st=False, l2_h=False,
            l2_st=False):
    s = SRC
    if dense_tma:
        # dO as a dense (R, d) tensor by TMA in the producer (the dA' path only: this copy's up-projection is not run)
        old = "                _ws_copy_gathered(g_smem, s, ready_c, a0, a1, m0, m1, k0 + ks, D)\n"
        new = ("                if UP:\n" + "    " + old +
               "                else:\n"
               "                    _tma_load(a_desc, [row0, k0], ready_t.index(s), g_smem.index(2 * s))\n"
               "                    _tma_load(a_desc, [row0 + HALF, k0], ready_t.index(s), g_smem.index(2 * s + 1))\n"
               "                    gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)\n")
        assert s.count(old) == 1
        s = s.replace(old, new)
        old = "                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)\n"
        assert s.count(old) == 1
        s = s.replace(old, "                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES + 2 * HALF * BLOCK_K * 2)\n")
        old = "                    N, D, stride_at, num_n, n_items, UP: gl.constexpr):\n"
        assert s.count(old) == 1
        s = s.replace(old, "                    N, D, stride_at, num_n, n_items, UP: gl.constexpr, a_desc=None):\n")
        old = "                 N, D, stride_ot, num_n, n_items, False)\n"
        assert s.count(old) == 1
        s = s.replace(old, "                 N, D, stride_ot, num_n, n_items, False, a_desc)\n")
        old = "        num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)\n        cargs = (g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,\n"
        assert s.count(old) == 1
        s = s.replace(old, "        a_desc = gl_tma.make_tensor_descriptor(dO, shape=[R, D], strides=[stride_ot, 1], block_shape=[HALF, BLOCK_K], layout=g_layout)\n" + old)
    if no_io or no_h or ef_h or l2_h:
        a, b = s.index("    def _db_load_h("), s.index("    def _sigmoid_approx(")
        body = s[a:b]
        assert body.count("mrow = rows < row_end") == 1 and body.count("other=0.0)") == 3
        if l2_h:   # every chunk's h from the program's own 64 rows: the same loads, served by L2
            old = "hp = H + rows.to(gl.int64)[:, None] * stride_hr + cols[None, :]"
            assert body.count(old) == 1
            body = body.replace(old, "hp = H + (rows.to(gl.int64) % 64 + gl.program_id(0) * 64)[:, None] * stride_hr"
                                     " + (cols % 256)[None, :]")
        if no_io or no_h:
            body = body.replace("mrow = rows < row_end", "mrow = rows < 0")
        if ef_h:
            body = body.replace("other=0.0)", "other=0.0, eviction_policy='evict_first')")
        s = s[:a] + body + s[b:]
    if no_io or no_st or ef_st or l2_st:
        a, b = s.index("    def _db_epilogue("), s.index("    def _db_consumer0(")
        body = s[a:b]
        assert body.count("mask=mask)") == 3 and body.count("mask=mrow)") == 1
        if l2_st:  # dH and A' stored into the program's own 64 rows, over and over: the same stores, few reach DRAM
            for old in ("dp = dH + rows64[:, None] * stride_hr + cols[None, :]",
                        "gl.store(Ap + rows64[:, None] * stride_ar + cols[None, :]"):
                assert body.count(old) == 1
                body = body.replace(old, old.replace("rows64[:, None]", "(rows64 % 64 + gl.program_id(0) * 64)[:, None]")
                                            .replace("cols[None, :]", "(cols % 256)[None, :]"))
        if no_io or no_st:
            body = body.replace("mask=mask)", "mask=mask & (rows < 0)[:, None])").replace("mask=mrow)", "mask=mrow & (rows < 0))")
        if ef_st:
            body = body.replace("mask=mask)", "mask=mask, eviction_policy='evict_first')")
        s = s[:a] + body + s[b:]
    path = os.path.join(tempfile.mkdtemp(), f"sk_{name}.py")
    open(path, "w").write(s.replace('"sonic::', f'"sonic{name}::').replace("torch.ops.sonic", f"torch.ops.sonic{name}"))
    spec = importlib.util.spec_from_file_location(f"sk_{name}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


# name: (the patch's switches, dense dO, a proxy): the dense forms read dO as R rows in order (the identity gather)
ALL = {"tree": (None, False, False), "dense cp.async": (None, True, True),
       "dense TMA": (dict(dense_tma=True), True, True), "no epilogue IO": (dict(no_io=True), False, True),
       "dense TMA, no epilogue IO": (dict(dense_tma=True, no_io=True), True, True),
       "no h loads": (dict(no_h=True), False, True), "no stores": (dict(no_st=True), False, True),
       "h evict_first": (dict(ef_h=True), False, False), "all evict_first": (dict(ef_h=True, ef_st=True), False, False),
       "tokens B=2": (None, 2, False), "tokens B=2, all evict_first": (dict(ef_h=True, ef_st=True), 2, False),
       "h from L2": (dict(l2_h=True), False, True), "stores to L2": (dict(l2_st=True), False, True),
       "IO in L2": (dict(l2_h=True, l2_st=True), False, True)}


def token_blocked(r, T, B):
    # the real tiles (the surplus ones come after them) sorted stably by the block of B that their first token is in
    counts = (r.offsets[1:] - r.offsets[:-1]).long()
    n_real = int(((counts + sk.BLOCK_M - 1) // sk.BLOCK_M).sum())
    te, tr = r.tile_expert.clone(), r.tile_row0.clone()
    perm = torch.sort(r.gather_idx[tr[:n_real].long()].long() * B // T, stable=True).indices
    te[:n_real], tr[:n_real] = te[:n_real][perm], tr[:n_real][perm]
    return r._replace(tile_expert=te, tile_row0=tr)


names = ["tree"] + (sys.argv[2].split(";") if len(sys.argv) > 2 else
                    ["dense cp.async", "dense TMA", "no epilogue IO", "dense TMA, no epilogue IO"])
VARIANTS = {v: (sk if ALL[v][0] is None else patched(f"v{i}", **ALL[v][0]), ALL[v][1]) for i, v in enumerate(names)}
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name in sys.argv[3:] or SHAPES:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dense = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    rd = r._replace(gather_idx=torch.arange(R, device="cuda", dtype=r.gather_idx.dtype))
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    rt = {B: token_blocked(r, T, B) for B in {ALL[v][1] for v in VARIANTS} if B is not True and B > 1}
    fns = {v: (lambda m=m, dn=dn: m._down_bwd_hopper(dense if dn is True else dO, w2, h,
                                                     rd if dn is True else rt[dn] if dn else r, dH, Ap))
           for v, (m, dn) in VARIANTS.items()}
    # bit for bit: the real variants against the tree, the dense TMA copy against the dense cp.async one
    same = {}
    for v, ref in [(v, "tree") for v in fns if not ALL[v][2] and v != "tree"] + \
                  ([("dense TMA", "dense cp.async")] if "dense TMA" in fns and "dense cp.async" in fns else []):
        a_ = (fns[ref](), dH.clone(), Ap.clone())
        b_ = (fns[v](), dH.clone(), Ap.clone())
        same[f"{v} vs {ref}"] = [torch.equal(x, y) for x, y in zip(a_, b_)]
        del a_, b_
    times = {v: [] for v in fns}
    for rnd in range(3):
        for v, f in fns.items():
            times[v].append(do_bench(f, warmup=10, rep=150) * 1e3)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    cub = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=150) * 1e3
    del A_, B_
    print(f"{name:5s} cuBLAS {cub:7.1f} us; bit-identical (dS, dH, A'): {same}", flush=True)
    for v, t in times.items():
        print(f"    {v:26s} us " + " ".join(f"{x:7.1f}" for x in t) + f"   cuBLAS / best {cub / min(t):.2f}", flush=True)
    out.append(dict(shape=name, bit_identical=same, us=times, cublas_us=cub))
    del r, rd, rt, dO, w2, h, dense, dH, Ap
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
