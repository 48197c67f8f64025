"""Probe 1: SDPA backends at h200_moe's attention shape; router GEMM stacked vs two; router fwd kernel
packed-key top-K vs argmax rounds; extended autotune config sweeps of the expert kernels at 1.4B and 7B."""
import sys, time, torch, triton, triton.language as tl
import torch.nn.functional as F
from triton.testing import do_bench
import sonic_kernels as sk
torch.manual_seed(0)
dev = "cuda"
def ms(fn, **kw):
    return do_bench(fn, warmup=10, rep=50, **kw)

print("== SDPA, B=8 H=12 T=2048 hd=128 bf16 causal, fwd / fwd+bwd ms", flush=True)
from torch.nn.attention import sdpa_kernel, SDPBackend
q, k, v = (torch.randn(8, 12, 2048, 128, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
go = torch.randn_like(q)
for be in [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, None]:
    try:
        def f():
            if be is None:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
            with sdpa_kernel([be]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        def fb():
            o = f(); o.backward(go)
        tf, tfb = ms(f), ms(fb, grad_to_none=[q, k, v])
        fl = 4 * 8 * 12 * 2048 * 2048 * 128 / 2
        print(f"{str(be):32s} fwd {tf:.3f} ms ({fl/tf/1e9:.0f} TFLOPS) fwd+bwd {tfb:.3f} ms ({3.5*fl/tfb/1e9:.0f})", flush=True)
    except Exception as e:
        print(f"{be}: failed {type(e).__name__}: {str(e)[:200]}", flush=True)
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True); o.backward(go); torch.cuda.synchronize()
print("default SDPA kernels:", sorted({e.name[:90] for e in prof.events() if e.device_type.name == "CUDA"}), flush=True)
del q, k, v, go

sys.path.insert(0, '.gpu'); import packed as pm

print("== router: logits GEMM and the fwd kernel", flush=True)
for name, T, d, E, K in [("1.4B", 40960, 768, 128, 8), ("7B", 24576, 1536, 128, 8), ("30B", 32768, 4096, 256, 16)]:
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    w = torch.randn(E, d, device=dev) * 0.02
    hi = w.to(torch.bfloat16); lo = (w - hi.float()).to(torch.bfloat16); w2 = torch.cat([hi, lo])
    t2 = ms(lambda: torch.addmm(torch.mm(x, hi.t(), out_dtype=torch.float32), x, lo.t(), out_dtype=torch.float32))
    t1 = ms(lambda: torch.mm(x, w2.t(), out_dtype=torch.float32))
    t0 = ms(lambda: torch.mm(x, hi.t(), out_dtype=torch.float32))
    dl = torch.randn(T, 2 * E, device=dev).to(torch.bfloat16)
    tw2 = ms(lambda: torch.addmm(torch.mm(dl[:, :E].t(), x, out_dtype=torch.float32), dl[:, E:].t(), x, out_dtype=torch.float32))
    tw1 = ms(lambda: torch.mm(dl.t(), x, out_dtype=torch.float32))
    tadd = ms(lambda: x.add_(x))
    print(f"{name}: logits mm+addmm {t2*1e3:.0f} us, stacked mm {t1*1e3:.0f} us, one bf16 mm {t0*1e3:.0f} us; "
          f"dW two {tw2*1e3:.0f} us stacked {tw1*1e3:.0f} us; (T,d) add_ {tadd*1e3:.0f} us", flush=True)
    logits = torch.mm(x, w2.t(), out_dtype=torch.float32)[:, :E].contiguous()
    bias = torch.zeros(E, device=dev)
    bt = sk._router_block_t(E); grid = triton.cdiv(T, bt)
    outs = {}
    for kname, kern in [("argmax", sk._router_fwd_kernel), ("packed", pm._router_fwd_packed)]:
        for rt in (0, 2):
            idx = torch.empty(T, K, device=dev, dtype=torch.int64); g = torch.empty(T, K, device=dev)
            lse, ssum = torch.empty(T, device=dev), torch.empty(T, device=dev)
            psum = torch.empty(grid, E, device=dev); cnt = torch.empty(grid, E, device=dev, dtype=torch.int32)
            call = lambda: kern[(grid,)](logits, bias, idx, g, lse, ssum, psum, cnt, T, E, logits.stride(0), K=K, ROUTER=rt, PARTS=1,
                                          NORM=True, BLOCK_T=bt, BLOCK_E=triton.next_power_of_2(E))
            t = ms(call)
            outs[(kname, rt)] = (idx.clone(), g.clone())
            ck = kern.warmup(logits, bias, idx, g, lse, ssum, psum, cnt, T, E, logits.stride(0), K=K, ROUTER=rt, NORM=True, PARTS=1,
                             BLOCK_T=bt, BLOCK_E=triton.next_power_of_2(E), grid=(grid,)); ck._init_handles()
            print(f"  fwd kernel {kname} router {rt}: {t*1e3:.1f} us, regs {ck.n_regs} spills {ck.n_spills}", flush=True)
    print("  same idx/gates:", all(torch.equal(outs[("argmax", r)][0], outs[("packed", r)][0]) and
                                 torch.equal(outs[("argmax", r)][1], outs[("packed", r)][1]) for r in (0, 2)), flush=True)

print("== expert kernel config sweeps (us per config)", flush=True)
C = triton.Config
sweeps = {
 "up": (sk._up_swiglu_kernel, [C(dict(BLOCK_N=n, BLOCK_K=k), num_warps=w, num_stages=s) for n, k, w, s in
        [(128, 64, 8, 4), (128, 32, 8, 5), (128, 64, 8, 3), (64, 64, 4, 4), (64, 128, 4, 3), (128, 128, 8, 3), (64, 64, 8, 5), (256, 64, 8, 3)]]),
 "gmm": (sk._grouped_mm_kernel, [C(dict(BLOCK_N=n, BLOCK_K=k), num_warps=w, num_stages=s) for n, k, w, s in
        [(256, 64, 8, 3), (256, 32, 8, 4), (128, 64, 8, 4), (128, 64, 4, 4), (128, 128, 8, 3), (256, 64, 8, 4), (128, 64, 4, 3), (64, 64, 4, 4)]]),
 "down": (sk._down_bwd_kernel, [C(dict(SPLIT_M=sm, NACC=na, BLOCK_N=n, BLOCK_K=k), num_warps=w, num_stages=s) for sm, na, n, k, w, s in
        [(2, 2, 64, 64, 4, 4), (2, 2, 128, 64, 8, 4), (1, 2, 64, 64, 8, 5), (2, 2, 64, 128, 4, 3), (2, 2, 128, 32, 8, 4),
         (2, 1, 128, 64, 4, 4), (1, 1, 128, 64, 8, 4), (2, 2, 64, 32, 4, 5), (2, 2, 64, 64, 4, 3), (1, 2, 64, 128, 8, 3)]]),
 "wgrad": (sk._wgrad_kernel, [C(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=k), num_warps=w, num_stages=s) for m, n, k, w, s in
        [(128, 128, 64, 4, 2), (128, 128, 64, 4, 3), (128, 128, 32, 4, 4), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3),
         (128, 128, 64, 8, 3), (128, 256, 32, 8, 4), (128, 128, 128, 8, 2)]]),
}
for name, kern in [(k, v[0]) for k, v in sweeps.items()]:
    kern.configs = sweeps[name][1]
for name, T, d, n, E, K in [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8)]:
    for kern in (v[0] for v in sweeps.values()):
        kern.cache.clear()
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device=dev, dtype=torch.bfloat16) * 0.02
    w2 = torch.randn(E, n, d, device=dev, dtype=torch.bfloat16) * 0.02
    logits = torch.randn(T, E, device=dev)
    idx = logits.topk(K, dim=1).indices
    pt = torch.arange(T, device=dev).repeat_interleave(K); pe = idx.flatten(); ps = torch.rand(T * K, device=dev)
    out, h, *rr = sk.moe_fwd_impl(x, w1, w2, pt, pe, ps)
    r = sk.Routing(*rr)
    dout = torch.randn_like(x)
    dH, Ap, dS = sk.down_bwd(dout, w2, h, r)
    sk.wgrad(Ap, dout, r, gather_a=False, gather_b=True)
    wg2 = dict(sk._wgrad_kernel.configs_timings)
    sk.wgrad(x, dH, r, gather_a=True, gather_b=False)
    wg1 = dict(sk._wgrad_kernel.configs_timings)
    sk.grouped_mm(dH, w1, r, trans_b=True)
    gmm_b = dict(sk._grouped_mm_kernel.configs_timings)
    tim = {"up": sk._up_swiglu_kernel.configs_timings, "gmm_fwd": None, "down": sk._down_bwd_kernel.configs_timings,
           "dw2": wg2, "dw1": wg1, "gmm_dx": gmm_b}
    sk._grouped_mm_kernel.cache.clear(); sk.grouped_mm(sk.up_swiglu(x, w1, r)[1], w2, r); tim["gmm_fwd"] = dict(sk._grouped_mm_kernel.configs_timings)
    ncur = {"up": 2, "gmm_fwd": 3, "gmm_dx": 3, "down": 3, "dw2": 3, "dw1": 3}
    for part, t in tim.items():
        def v(x): return x[0] if isinstance(x, list) else x
        kern = {"up": "up", "gmm_fwd": "gmm", "gmm_dx": "gmm", "down": "down", "dw2": "wgrad", "dw1": "wgrad"}[part]
        cfgs = sweeps[kern][1]
        cur = min(v(t[c]) for c in cfgs[:ncur[part]])
        best = min(cfgs, key=lambda c: v(t[c]))
        print(f"{name} {part}: current {cur*1e3:.0f} us, best {v(t[best])*1e3:.0f} us {best.all_kwargs()} | all: " +
              " ".join(f"{v(t[c])*1e3:.0f}" for c in cfgs), flush=True)
