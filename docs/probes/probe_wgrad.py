# GPU probe kept for docs/PERF.md (v4): tile configs of the two backward GEMM kernels that v3 left
# at their v1 lists, the weight gradients (_wgrad_kernel: dW2, dW1) and the dX~ / y grouped GEMM
# (_grouped_mm_kernel), at the 7B, 30B and 120B shapes; each config checked against the first
# (the current autotune pick's neighbour) and timed twice. Then a per-kernel profile of one layer.
# v6 adds 'sparse': the weight gradients at the token-rounding shape (16384, 1536, 256, K=8) with
# E = 64, 256 and 512, where an expert has only ~2048, ~512 and ~256 rows: short reduction loops.
# Run from the repo root:  python docs/probes/probe_wgrad.py [wgrad] [wgrad2] [mm] [prof] [sparse]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
what = sys.argv[1:] = sys.argv[1:] or ['wgrad', 'mm', 'prof']
from probe_down import layer, rel   # probe_down runs nothing when imported
dt = torch.bfloat16
SHAPES = {'7B': (24576, 1536, 256, 128, 8), '30B': (32768, 4096, 512, 128, 8), '120B': (32768, 4096, 2048, 64, 4)}
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages); the first two are v1-v3's list
WGRAD = [(128, 128, 64, 4, 3), (128, 128, 32, 4, 4), (128, 128, 64, 8, 3), (128, 128, 64, 8, 4),
         (128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 256, 32, 8, 4), (256, 128, 32, 8, 4),
         (64, 256, 64, 4, 4), (128, 64, 64, 4, 4)]
# round 2: 16 warps (a 128 x 256 accumulator at 64 registers a thread), deeper or wider K steps
WGRAD2 = [(128, 128, 64, 4, 3), (128, 128, 64, 8, 3), (128, 256, 64, 8, 4), (128, 256, 64, 16, 3),
          (256, 128, 64, 16, 3), (128, 256, 64, 16, 4), (128, 128, 128, 8, 3), (128, 128, 128, 4, 2),
          (256, 256, 64, 16, 3)]
# v6, short loops (4-8 steps of BLOCK_K): fewer stages (more programs per SM, so one's store
# overlaps another's MMAs), narrower K steps, wider or narrower tiles
SPARSE = [(128, 128, 64, 4, 3), (128, 128, 32, 4, 4), (128, 128, 64, 4, 2), (128, 128, 32, 4, 3),
          (128, 128, 32, 4, 2), (128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (128, 256, 32, 8, 3),
          (256, 128, 64, 8, 3), (64, 128, 64, 4, 3), (128, 64, 64, 4, 3), (64, 256, 64, 4, 3)]
# (BLOCK_N, BLOCK_K, warps, stages); BLOCK_M is the routing tile, 128; the first three are the list
MM = [(256, 64, 8, 3), (256, 32, 8, 4), (128, 64, 8, 4), (256, 64, 8, 4), (128, 64, 4, 4),
      (128, 128, 8, 3), (256, 128, 8, 2), (64, 64, 4, 4)]

def routing(T, E, K):
    torch.manual_seed(0)
    logits = torch.randn(T, E, device='cuda')
    idx = torch.topk(logits, K).indices
    pt = torch.arange(T, device='cuda').repeat_interleave(K)
    return sk.routing_metadata(pt, idx.flatten(), torch.ones(T * K, device='cuda'), T, E)

def run_variants(title, fl, call, outs, variants, fmt):
    print(f"== {title}", flush=True)
    ref = None
    for v in variants:
        name = fmt(v)
        try:
            k = call(v); torch.cuda.synchronize()
            out = [o.clone() for o in outs]
            ref = ref or out
            err = max(rel(a, b) for a, b in zip(out, ref))
            ms = [do_bench(lambda: call(v), warmup=10, rep=100) for _ in range(2)]
            print(f"{name:36s} {ms[0]*1e3:8.1f}us {ms[1]*1e3:8.1f}us {fl/min(ms)/1e9:5.0f}TF "
                  f"regs {k.n_regs} spills {k.n_spills} err-vs-first {err:.1e}", flush=True)
        except Exception as ex:
            print(f"{name:36s} ERR {type(ex).__name__}: {str(ex)[:150]}", flush=True)

def wgrad(T, d, n, E, K, variants=WGRAD):
    gi, off, *_ = routing(T, E, K)
    R = T * K
    x = torch.randn(T, d, device='cuda', dtype=dt); dO = torch.randn(T, d, device='cuda', dtype=dt)
    Ap = torch.randn(R, n, device='cuda', dtype=dt); dH = torch.randn(R, 2 * n, device='cuda', dtype=dt)
    dw2 = torch.empty(E, n, d, device='cuda', dtype=dt); dw1 = torch.empty(E, d, 2 * n, device='cuda', dtype=dt)
    fmt = lambda v: "BM{} BN{} BK{} w{} s{}".format(*v)
    def call2(v):
        BM, BN, BK, w, s = v
        return sk._wgrad_kernel.fn[(E * triton.cdiv(n, BM) * triton.cdiv(d, BN),)](
            Ap, dO, dw2, gi, gi, off, n, d, 0, Ap.stride(0), dO.stride(0), dw2.stride(0), dw2.stride(1),
            GATHER_A=False, GATHER_B=True, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
    def call1(v):
        BM, BN, BK, w, s = v
        return sk._wgrad_kernel.fn[(E * triton.cdiv(d, BM) * triton.cdiv(2 * n, BN),)](
            x, dH, dw1, gi, gi, off, d, 2 * n, 0, x.stride(0), dH.stride(0), dw1.stride(0), dw1.stride(1),
            GATHER_A=True, GATHER_B=False, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
    run_variants(f"dW2 T={T} d={d} n={n} E={E} K={K}", 2 * R * n * d, call2, [dw2], variants, fmt)
    run_variants(f"dW1 T={T} d={d} n={n} E={E} K={K}", 4 * R * n * d, call1, [dw1], variants, fmt)

def mm(T, d, n, E, K):
    gi, off, rev, tokoff, te, tr0, rs = routing(T, E, K)
    R, tiles = T * K, sk._max_tiles(T * K, E)
    w1 = (torch.randn(E, d, 2 * n, device='cuda') / d**0.5).to(dt); w2 = (torch.randn(E, n, d, device='cuda') / n**0.5).to(dt)
    a = torch.randn(R, n, device='cuda', dtype=dt); dH = torch.randn(R, 2 * n, device='cuda', dtype=dt)
    y = torch.empty(R, d, device='cuda', dtype=dt); dxr = torch.empty(R, d, device='cuda', dtype=dt)
    fmt = lambda v: "BN{} BK{} w{} s{}".format(*v)
    def cy(v):
        BN, BK, w, s = v
        return sk._grouped_mm_kernel.fn[(tiles * triton.cdiv(d, BN),)](a, w2, y, te, tr0, off, d, n, E,
            a.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), y.stride(0),
            BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
    def cdx(v):
        BN, BK, w, s = v
        return sk._grouped_mm_kernel.fn[(tiles * triton.cdiv(d, BN),)](dH, w1, dxr, te, tr0, off, d, 2 * n, E,
            dH.stride(0), w1.stride(0), w1.stride(2), w1.stride(1), dxr.stride(0),
            BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
    run_variants(f"y = a @ W2 T={T} d={d} n={n} E={E} K={K}", 2 * R * n * d, cy, [y], MM, fmt)
    run_variants(f"dX~ = dH @ W1^T T={T} d={d} n={n} E={E} K={K}", 4 * R * n * d, cdx, [dxr], MM, fmt)

for name, shape in SHAPES.items():
    if 'wgrad' in what:
        wgrad(*shape)
    if 'wgrad2' in what:
        wgrad(*shape, WGRAD2)
    if 'mm' in what:
        mm(*shape)
if 'sparse' in what:
    for E in (64, 256, 512):
        wgrad(16384, 1536, 256, E, 8, SPARSE)
if 'prof' in what:
    for name in ('7B', '120B'):
        layer(*SHAPES[name], 'topk')
