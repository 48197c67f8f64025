"""dA' kernel (down_bwd) configs: us per config (autotuner's do_bench) and agreement with the first config."""
import sys, torch, triton
import sonic_kernels as sk
C = triton.Config
cfgs = [C(dict(SPLIT_M=sm, NACC=na, BLOCK_N=bn, BLOCK_K=bk), num_warps=w, num_stages=s) for sm, na, bn, bk, w, s in
        [(2,2,64,64,4,4), (2,2,128,64,8,4), (1,2,64,64,8,5),
         (2,4,32,64,4,3), (2,4,32,64,4,4), (2,4,32,128,4,2), (1,4,32,64,8,2), (1,4,32,64,8,3), (1,4,32,128,8,2),
         (2,2,32,64,4,4), (1,4,32,64,8,4), (2,4,64,64,4,3)]]
dev = "cuda"
shapes = [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8), ("30B", 32768, 4096, 256, 256, 16),
          ("120B", 32768, 4096, 2048, 64, 4)]
for name, T, d, n, E, K in shapes:
    torch.manual_seed(0)
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device=dev, dtype=torch.bfloat16) * 0.02
    w2 = torch.randn(E, n, d, device=dev, dtype=torch.bfloat16) * 0.02
    logits = torch.randn(T, E, device=dev)
    idx = logits.topk(K, dim=1).indices
    pt = torch.arange(T, device=dev).repeat_interleave(K); pe = idx.flatten(); ps = torch.rand(T * K, device=dev)
    out, h, *rr = sk.moe_fwd_impl(x, w1, w2, pt, pe, ps)
    r = sk.Routing(*rr)
    dout = torch.randn_like(x)
    kern = sk._down_bwd_kernel
    kern.configs = cfgs; kern.cache.clear()
    sk.down_bwd(dout, w2, h, r); torch.cuda.synchronize()
    tim = dict(kern.configs_timings)
    ref = None
    errs = []
    for c in cfgs:
        kern.configs = [c]; kern.cache.clear()
        res = sk.down_bwd(dout, w2, h, r)
        if ref is None:
            ref = res
        errs.append(max(((a.float() - b.float()).norm() / b.float().norm()).item() for a, b in zip(res, ref)))
    fl = 2 * T * K * n * d
    for c, e in zip(cfgs, errs):
        t = tim[c]; t = t[0] if isinstance(t, list) else t
        print(f"{name} {c.kwargs['SPLIT_M']},{c.kwargs['NACC']},{c.kwargs['BLOCK_N']},{c.kwargs['BLOCK_K']} w{c.num_warps} s{c.num_stages}: "
              f"{t*1e3:7.1f} us {fl / t / 1e9:5.0f} TFLOPS  rel diff {e:.1e}", flush=True)
    del x, w1, w2, h, r, out, dout
    torch.cuda.empty_cache()
