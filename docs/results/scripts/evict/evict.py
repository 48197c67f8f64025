"""L2 eviction hints in the Hopper up-projection's and dA''s epilogues: their stores (h and a; dH and A') marked
evict_first (PTX st.global.L2::cache_hint with an evict_first policy), so that the rows they stream through L2 leave
it before the gathered rows, which each tile of another expert reads again (K times a token). A copy of sonic_kernels
with the hints (its ops renamed), against the tree's kernels, in alternating rounds at h200_moe's layer shape and the
paper's four; outputs must be equal. ('el', evict_last on the gathered rows' cp.async, compiles to no hint in
Triton 3.6, so it is not timed.) usage: evict.py OUT.json"""
import importlib.util, json, os, sys
import torch
import sonic_kernels as sk
src0 = open(sk.__file__).read()
def patch(src, which):
    def swap(old, new):
        nonlocal src
        assert src.count(old) == 1, old
        src = src.replace(old, new)
    if 'ef' in which:   # the epilogues' streams: h read, dH / A' / h / a written, first out of L2
        swap("        _cp_async(h_smem.index(2 * b), hp, mask=mask)\n        _cp_async(h_smem.index(2 * b + 1), hp + N, mask=mask)",
             "        _cp_async(h_smem.index(2 * b), hp, mask=mask, eviction_policy='evict_first')\n        _cp_async(h_smem.index(2 * b + 1), hp + N, mask=mask, eviction_policy='evict_first')")
        src = src.replace("(a * sc[:, None]).to(Ap.dtype.element_ty),", "(a * sc[:, None]).to(Ap.dtype.element_ty), eviction_policy='evict_first',")
        swap("gl.store(dp, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask)",
             "gl.store(dp, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask, eviction_policy='evict_first')")
        swap("gl.store(dp + N, (da * silu).to(dH.dtype.element_ty), mask=mask)",
             "gl.store(dp + N, (da * silu).to(dH.dtype.element_ty), mask=mask, eviction_policy='evict_first')")
        swap("                    gl.store(hp, g, mask=mask)\n                    gl.store(hp + N, u, mask=mask)",
             "                    gl.store(hp, g, mask=mask, eviction_policy='evict_first')\n                    gl.store(hp + N, u, mask=mask, eviction_policy='evict_first')")
        swap("gl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask)",
             "gl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask, eviction_policy='evict_first')")
    if 'el' in which:   # the gathered rows, read K times, last out
        swap("        _cp_async(g_smem.index(2 * s), p0 + kk[None, :], mask=m0[:, None] & mk)\n        _cp_async(g_smem.index(2 * s + 1), p1 + kk[None, :], mask=m1[:, None] & mk)",
             "        _cp_async(g_smem.index(2 * s), p0 + kk[None, :], mask=m0[:, None] & mk, eviction_policy='evict_last')\n        _cp_async(g_smem.index(2 * s + 1), p1 + kk[None, :], mask=m1[:, None] & mk, eviction_policy='evict_last')")
    return src
def load(which, tmp):
    ns = f"sonicev{which}"
    path = os.path.join(tmp, f"sk_{which}.py")
    open(path, 'w').write(patch(src0, which).replace('"sonic::', f'"{ns}::').replace("torch.ops.sonic", f"torch.ops.{ns}"))
    spec = importlib.util.spec_from_file_location(f"sk_{which}", path)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

if __name__ == "__main__":
    import tempfile
    from triton.testing import do_bench
    mods = {"tree": sk, "evict_first": load("ef", tempfile.mkdtemp())}
    SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
              "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
    out = []
    for name, (T, d, n, E, K) in SHAPES.items():
        r = routing(T, E, K)
        R = T * K
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
        h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        fl = 2 * R * n * d
        jobs = {"up": (lambda m: m.up_swiglu(x, w1, r), 2 * fl), "dA'": (lambda m: m.down_bwd(dout, w2, h, r), fl)}
        for job, (f, flops) in jobs.items():
            ref = None
            for rnd in range(3):
                for mname, m in mods.items():
                    got = f(m)
                    ref = got if ref is None else ref
                    eq = all(torch.equal(p, q) for p, q in zip(got, ref))
                    ms = do_bench(lambda: f(m), warmup=10, rep=150)
                    print(f"{name} {job} {mname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS equal {eq}", flush=True)
                    out.append(dict(shape=name, job=job, variant=mname, round=rnd, us=ms * 1e3, equal=eq))
        del r, x, w1, w2, h, dout
        torch.cuda.empty_cache()
    json.dump(out, open(sys.argv[1], "w"), indent=1)
