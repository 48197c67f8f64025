"""dA' (down_bwd) with 256-column items (DB_WIDE_CONFIG, bf16 hand-over) against the 128-column kernel as
it was (.gpu/old) and as it is now (DB_CONFIG, its epilogue loop restructured), and cuBLAS's dense GEMM of
the same size: median of 20 (CUDA events), alternated twice; bit-identity of the 128-column kernel with the
old one; relative error of dH and dS against float64 for each."""
import importlib.util, sys, json, torch
import sonic_kernels as sk
spec = importlib.util.spec_from_file_location("sk_old", ".gpu/old/sonic_kernels.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)

def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2] * 1e3

W = dict(sk.DB_WIDE_CONFIG)
VARIANTS = {"128": (False, dict(sk.DB_CONFIG)),
            "256 c16n2 176/120/40": (True, dict(W)),
            "256 c8n2 176/88/72": (True, dict(W, CHUNK=8, NBUF=2, CONSUMER_REGS=176, EPILOGUE_REGS=88, PRODUCER_REGS=72))}
SHAPES = {"h200_moe 256/128/8": (16384, 1536, 256, 128, 8), "1.4B 256/128/8": (40960, 768, 256, 128, 8),
          "7B 256/128/8": (24576, 1536, 256, 128, 8), "30B 256/256/16": (32768, 4096, 256, 256, 16),
          "120B 2048/64/4": (32768, 4096, 2048, 64, 4)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    torch.manual_seed(0)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device="cuda", dtype=torch.bfloat16) / d ** 0.5
    w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16) / n ** 0.5
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    probs = torch.softmax(torch.randn(T, E, device="cuda"), -1)
    gates, idx = probs.topk(K, -1)
    pair_tok = torch.arange(T, device="cuda").repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), gates.flatten(), T, E)
    h, _ = sk.up_swiglu(x, w1, r)
    R = h.shape[0]
    # float64 reference of dH and dS, expert by expert
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    dH_ref = torch.empty(R, 2 * n, device="cuda", dtype=torch.float64)
    dS_ref = torch.empty(R, device="cuda", dtype=torch.float64)
    for e in range(E):
        a0, a1 = off[e], off[e + 1]
        dA = dout[gi[a0:a1]].double() @ w2[e].double().t()
        g, u, s = h[a0:a1, :n].double(), h[a0:a1, n:].double(), r.row_score[a0:a1].double()[:, None]
        sig = torch.sigmoid(g); silu = g * sig
        dH_ref[a0:a1, :n] = s * dA * u * (sig + silu * (1 - sig)); dH_ref[a0:a1, n:] = s * dA * silu
        dS_ref[a0:a1] = (dA * silu * u).sum(1)
    rel = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
    a_mat, b_mat = torch.randn(R, d, device="cuda", dtype=torch.bfloat16), torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    flops = 2 * R * n * d
    ref_old = old.down_bwd(dout, w2, h, r)
    res = {"old": [], "cublas": []}
    info = {"old": dict(err_dH=rel(ref_old[0], dH_ref), err_dS=rel(ref_old[2], dS_ref))}
    base = dict(sk.DB_CONFIG)
    for rnd in range(3):
        res["old"].append(timed(lambda: old.down_bwd(dout, w2, h, r)))
        res["cublas"].append(timed(lambda: a_mat @ b_mat))
        for k, (wide, cfg) in VARIANTS.items():
            sk.DB_WIDE = wide
            tgt = sk.DB_WIDE_CONFIG if wide else sk.DB_CONFIG
            saved = dict(tgt); tgt.clear(); tgt.update(cfg)
            try:
                if rnd == 0:
                    got = sk.down_bwd(dout, w2, h, r)
                    info[k] = dict(identical_to_old=all(torch.equal(a, b) for a, b in zip(got, ref_old)),
                                   err_dH=rel(got[0], dH_ref), err_dS=rel(got[2], dS_ref), same_Ap=torch.equal(got[1], ref_old[1]))
                    del got
                res.setdefault(k, []).append(timed(lambda: sk.down_bwd(dout, w2, h, r)))
            except Exception as ex:
                info[k] = dict(error=str(ex)[-300:])
            finally:
                tgt.clear(); tgt.update(saved)
    sk.DB_WIDE = None
    cub = min(res["cublas"])
    line = f"{name}: cuBLAS {cub:.0f} us |"
    for k, ts in res.items():
        if k == "cublas":
            continue
        line += f" {k}: " + "/".join(f"{t:.0f}" for t in ts) + f" us ({cub / min(ts):.2f} of cuBLAS) {info.get(k, {})} |"
    print(line, flush=True)
    out.append(dict(shape=name, times=res, info=info))
    del x, w1, w2, dout, h, ref_old, r, dH_ref, dS_ref, a_mat, b_mat
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
