# GPU probe kept for docs/PERF.md (v3): the dA' kernel's SPLIT_M / NACC variants, each checked
# against the v2 config and timed, with Triton's register report; then a per-kernel profile of one
# sonic forward+backward under top-K and token rounding. Run from the repo root:
#   python docs/probes/probe_down.py [down] [down2] [down3] [down4] [round] [fwd]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton, torch.nn.functional as F
from triton.testing import do_bench
import sonic_kernels as sk, model
what = sys.argv[1:] or ['down', 'round']
dt = torch.bfloat16
rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm()).item()

ROUND1 = [(1,1,64,64,8,4), (1,1,64,64,8,3), (1,1,128,64,8,4), (1,1,64,128,8,3),
          (1,2,64,64,8,3), (1,2,64,64,8,4), (1,2,32,64,8,4), (1,2,128,64,8,3),
          (2,1,128,64,4,4), (2,1,128,64,4,3), (2,1,128,64,8,4), (2,1,256,64,8,3), (2,1,256,64,4,3),
          (2,2,64,64,4,4), (2,2,64,64,8,4), (2,2,128,64,8,3), (2,2,128,64,4,3)]
# round 2: around round 1's best two, (2,2,64,64,4,4) at 7B and (1,2,64,64,8,4) at 30B
ROUND2 = [(1,1,64,64,8,4), (2,2,64,64,4,4), (2,2,64,64,4,3), (2,2,64,64,4,5), (2,2,64,32,4,5), (2,2,32,64,4,4),
          (2,2,64,128,4,3), (1,2,64,64,8,4), (1,2,64,64,8,5), (1,2,64,32,8,5), (2,2,128,64,8,4), (2,1,128,64,8,5)]
# round 3 (v4): the 120B shape (n=2048, d=4096), where the kernel ran at ~310 TFLOPS in the layer profile
# while the other GEMMs ran at 400-600: the v3 list first, then wider programs
ROUND3 = [(1,1,64,64,8,4), (2,2,64,64,4,4), (2,2,128,64,8,4), (1,2,64,64,8,5), (1,2,64,64,8,4),
          (1,2,128,64,8,3), (1,2,128,64,8,4), (1,2,128,32,8,5), (1,1,128,64,8,4), (1,1,128,64,8,3),
          (2,1,128,64,8,4), (2,2,128,64,8,3), (2,2,128,32,8,5), (1,2,64,128,8,3)]
# round 4 (v4, after the epilogue forms every output before its stores): 16 warps, so that a 128 x 256
# program's accumulators take 64 registers a thread instead of 128
ROUND4 = [(1,2,64,64,8,5), (2,2,64,64,4,4), (1,2,64,128,8,3), (1,2,128,64,16,3), (1,2,128,64,16,4),
          (1,1,128,64,16,4), (1,1,256,64,16,3), (1,2,64,64,16,4), (2,2,128,64,16,4), (1,2,128,32,16,5)]

def down(T, d, n, E, K, variants):
    torch.manual_seed(0)
    w2 = (torch.randn(E, n, d, device='cuda') / n**0.5).to(dt)
    logits = torch.randn(T, E, device='cuda')
    top, idx = torch.topk(logits, K); s = torch.softmax(top, -1).flatten()
    pt = torch.arange(T, device='cuda').repeat_interleave(K); pe = idx.flatten()
    gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt, pe, s, T, E)
    R = T * K; tiles = sk._max_tiles(R, E)
    dO = torch.randn(T, d, device='cuda').to(dt); h = torch.randn(R, 2 * n, device='cuda').to(dt)
    print(f"== dA' kernel, T={T} d={d} n={n} E={E} K={K}", flush=True)
    ref = None
    for SM, NA, BN, BK, w, st in variants:
        dH = torch.empty(R, 2 * n, device='cuda', dtype=dt); Ap = torch.empty(R, n, device='cuda', dtype=dt)
        dSp = torch.zeros(triton.cdiv(n, 32), R, device='cuda')
        grid = (tiles * SM * triton.cdiv(n, NA * BN),)
        fn = lambda: sk._down_bwd_kernel.fn[grid](dO, w2, h, rs, gi, te, tr0, off, dH, Ap, dSp, n, d, E, R,
                dO.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), h.stride(0), Ap.stride(0),
                BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", SPLIT_M=SM, NACC=NA, num_warps=w, num_stages=st)
        name = f"SPLIT_M={SM} NACC={NA} BN{BN} BK{BK} w{w} s{st}"
        try:
            k = fn(); torch.cuda.synchronize()
            out = (dH.clone(), Ap.clone(), dSp.sum(0))
            if ref is None: ref = out
            err = max(rel(a, b) for a, b in zip(out, ref))
            ms1 = do_bench(fn, warmup=10, rep=50); ms2 = do_bench(fn, warmup=10, rep=50)
            print(f"{name:44s} {ms1*1e3:7.1f}us {ms2*1e3:7.1f}us {2*R*n*d/min(ms1,ms2)/1e9:5.0f}TF "
                  f"regs {k.n_regs} spills {k.n_spills} err-vs-first {err:.1e}", flush=True)
        except Exception as ex:
            print(f"{name:44s} ERR {type(ex).__name__}: {str(ex)[:150]}", flush=True)

def layer_args(T, d, n, E, K, route):
    torch.manual_seed(0)
    x = torch.randn(T, d, device='cuda', dtype=dt).requires_grad_()
    w1 = (torch.randn(E, d, 2 * n, device='cuda', dtype=dt) / d**0.5).requires_grad_()
    w2 = (torch.randn(E, n, d, device='cuda', dtype=dt) / n**0.5).requires_grad_()
    logits = torch.randn(T, E, device='cuda')
    top, idx = torch.topk(logits, K, dim=-1); gates = F.softmax(top, dim=-1)
    if route == 'rounding':
        pt, pe, ps, _, _ = model.round_tokens(idx, gates, F.softmax(logits, -1), 128, 'nearest')
    else:
        pt, pe, ps = torch.arange(T, device='cuda').repeat_interleave(K), idx.flatten(), gates.flatten()
    ps = ps.detach().clone().requires_grad_()
    return x, w1, w2, pt, pe, ps

def layer(T, d, n, E, K, route):
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, route)
    dy = torch.randn(T, d, device='cuda', dtype=dt)
    args = (x, w1, w2, pt, pe, ps)
    def step():  # grads set to None first, as bench.py does: no accumulation kernel in the profile
        for t in (x, w1, w2, ps): t.grad = None
        model.experts_sonic(*args).backward(dy)
    step(); torch.cuda.synchronize()
    R = int((pe < E).sum()); fl = 18 * R * n * d
    t = [do_bench(step, warmup=10, rep=100) for _ in range(3)]
    tf = [do_bench(lambda: model.experts_sonic(*args), warmup=10, rep=100) for _ in range(2)]
    print(f"== layer {route} T={T} d={d} n={n} E={E} K={K}: R={R} slots={pe.numel()} fwd+bwd ms {[round(v,3) for v in t]} "
          f"({fl/min(t)/1e9:.0f} TF) fwd ms {[round(v,3) for v in tf]}", flush=True)
    kernel_profile(step)

def kernel_profile(step, reps=5, top=14):
    # GPU time per kernel name, in us per step(), summed over reps steps; the largest first
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(reps): step()
        torch.cuda.synchronize()
    tot = {}
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            tot[ev.name[:60]] = tot.get(ev.name[:60], 0) + ev.device_time_total / reps
    for k_, v in sorted(tot.items(), key=lambda kv: -kv[1])[:top]:
        print(f"   {v:8.1f} us  {k_}")
    print(f"   {sum(tot.values()):8.1f} us  total", flush=True)

def fwd_only(T, d, n, E, K, route):
    # is a forward alone bound by the host? time to enqueue 20 forwards against the time to finish them
    import time
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, route)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            for _ in range(3): model.experts_sonic(x, w1, w2, pt, pe, ps)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(20): model.experts_sonic(x, w1, w2, pt, pe, ps)
            t1 = time.perf_counter(); torch.cuda.synchronize(); t2 = time.perf_counter()
        print(f"== fwd only {route} E={E} grad={grad}: enqueue {(t1-t0)/20*1e3:.3f} ms/call, done {(t2-t0)/20*1e3:.3f} ms/call", flush=True)

if __name__ == '__main__':  # importable: probe_wgrad and probe_round use layer and kernel_profile
    for r, variants in (('down', ROUND1), ('down2', ROUND2)):
        if r in what:
            down(24576, 1536, 256, 128, 8, variants)
            down(32768, 4096, 512, 128, 8, variants)
            down(40960, 768, 256, 128, 8, variants) if r == 'down2' else None
    if 'down3' in what:
        down(32768, 4096, 2048, 64, 4, ROUND3)
    if 'down4' in what:
        for shape in ((24576, 1536, 256, 128, 8), (32768, 4096, 512, 128, 8), (32768, 4096, 2048, 64, 4)):
            down(*shape, ROUND4)
    if 'round' in what:
        for E in (64, 256):
            layer(16384, 1536, 256, E, 8, 'topk')
            layer(16384, 1536, 256, E, 8, 'rounding')
    if 'fwd' in what:
        for route in ('topk', 'rounding'):
            fwd_only(16384, 1536, 256, 256, 8, route)
