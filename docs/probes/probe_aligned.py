# GPU probe for docs/PERF.md (session 7): does token rounding want other kernel configs than top-K?
# Every autotuner is keyed on shapes only, so top-K and rounded routings of one shape share the
# config picked first. Rounded counts are multiples of the 128-row tile: no partial last tile, no
# half-empty SPLIT_M program, and every weight-gradient loop a multiple of 128 rows (so BLOCK_K=128
# wastes nothing there). If the best config differs by routing, keying the autotuners on whether
# the counts are tile multiples gains the difference for free.
# Per E and routing, at (T, d, n, K) = (16384, 1536, 256, 8), it times each kernel of one sonic
# forward+backward under each config (the autotuners' lists plus a few), best of two do_bench runs.
# Run from the repo root:  python docs/probes/probe_aligned.py [E ...]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton
import torch.nn.functional as F
from triton.testing import do_bench
import sonic_kernels as sk, model

cpu = os.environ.get('TRITON_INTERPRET') == '1'   # a logic check on CPU: tiny shape, fp32, one call each
dt, dev = (torch.float32, 'cpu') if cpu else (torch.bfloat16, 'cuda')
T, d, n, K = (512, 64, 32, 4) if cpu else (16384, 1536, 256, 8)
PREC = 'ieee' if cpu else 'tf32'
ES = [int(a) for a in sys.argv[1:]] or ([8] if cpu else [256, 512])
UP = [(128, 64, 8, 4), (128, 32, 8, 5), (128, 64, 8, 3), (64, 64, 4, 4), (64, 64, 8, 4)]            # BN, BK, warps, stages
MM = [(256, 64, 8, 3), (256, 32, 8, 4), (128, 64, 8, 4), (128, 64, 4, 3), (256, 64, 8, 4), (128, 128, 8, 3)]
DOWN = [(2, 2, 64, 64, 4, 4), (2, 2, 128, 64, 8, 4), (1, 2, 64, 64, 8, 5), (1, 2, 64, 64, 8, 4),
        (2, 2, 64, 64, 4, 3), (1, 1, 128, 64, 8, 4)]                                              # SPLIT_M, NACC, BN, BK, w, s
WG = [(128, 128, 64, 4, 2), (128, 128, 64, 4, 3), (128, 128, 32, 4, 4), (128, 128, 128, 4, 2),
      (128, 128, 128, 8, 2), (128, 64, 128, 4, 2)]                                                # BM, BN, BK, w, s


def routing(E, route):
    torch.manual_seed(0)
    logits = torch.randn(T, E, device=dev)
    top, idx = torch.topk(logits, K, dim=-1)
    gates = F.softmax(top, dim=-1)
    if route == 'rounded':
        pt, pe, ps, _, _ = model.round_tokens(idx, gates, F.softmax(logits, dim=-1), 128, 'nearest')
    else:
        pt, pe, ps = torch.arange(T, device=dev).repeat_interleave(K), idx.flatten(), gates.flatten()
    return pt, pe, ps.float().contiguous()


def t(fn):
    fn()
    if cpu:
        return 0.0
    torch.cuda.synchronize()
    return min(do_bench(fn, warmup=10, rep=50) for _ in range(2)) * 1e3  # us


def run(E):
    torch.manual_seed(1)
    x = torch.randn(T, d, device=dev, dtype=dt)
    w1 = (torch.randn(E, d, 2 * n, device=dev) / d ** 0.5).to(dt)
    w2 = (torch.randn(E, n, d, device=dev) / n ** 0.5).to(dt)
    dO = torch.randn(T, d, device=dev, dtype=dt)
    res = {}
    for route in ('topk', 'rounded'):
        pt, pe, ps = routing(E, route)
        gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt, pe, ps, T, E)
        R, tiles = pe.numel(), sk._max_tiles(pe.numel(), E)
        rows = triton.next_power_of_2(max(1, R // E))
        h = torch.randn(R, 2 * n, device=dev, dtype=dt); a = torch.randn(R, n, device=dev, dtype=dt)
        hh, aa, y = torch.empty_like(h), torch.empty_like(a), torch.empty(R, d, device=dev, dtype=dt)
        dH, Ap, dxr = torch.randn_like(h), torch.randn_like(a), torch.empty(R, d, device=dev, dtype=dt)
        dSp = torch.zeros(triton.cdiv(n, 32), R, device=dev)
        dw1, dw2 = torch.empty_like(w1), torch.empty_like(w2)
        for BN, BK, w, s in UP:
            res[route, 'up', (BN, BK, w, s)] = t(lambda: sk._up_swiglu_kernel.fn[(tiles * triton.cdiv(n, BN),)](
                x, w1, hh, aa, gi, te, tr0, off, n, d, E, x.stride(0), w1.stride(0), w1.stride(1), hh.stride(0),
                aa.stride(0), BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC, num_warps=w, num_stages=s))
        for BN, BK, w, s in MM:
            res[route, 'y', (BN, BK, w, s)] = t(lambda: sk._grouped_mm_kernel.fn[(tiles * triton.cdiv(d, BN),)](
                a, w2, y, te, tr0, off, d, n, E, a.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), y.stride(0),
                BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC, num_warps=w, num_stages=s))
            res[route, 'dX~', (BN, BK, w, s)] = t(lambda: sk._grouped_mm_kernel.fn[(tiles * triton.cdiv(d, BN),)](
                dH, w1, dxr, te, tr0, off, d, 2 * n, E, dH.stride(0), w1.stride(0), w1.stride(2), w1.stride(1),
                dxr.stride(0), BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC, num_warps=w, num_stages=s))
        for SM, NA, BN, BK, w, s in DOWN:
            res[route, 'down_bwd', (SM, NA, BN, BK, w, s)] = t(lambda: sk._down_bwd_kernel.fn[
                (tiles * SM * triton.cdiv(n, NA * BN),)](
                dO, w2, h, rs, gi, te, tr0, off, dH, Ap, dSp, n, d, E, R, dO.stride(0), w2.stride(0), w2.stride(1),
                w2.stride(2), h.stride(0), Ap.stride(0), BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC,
                SPLIT_M=SM, NACC=NA, num_warps=w, num_stages=s))
        for BM, BN, BK, w, s in WG:
            res[route, 'dW2', (BM, BN, BK, w, s)] = t(lambda: sk._wgrad_kernel.fn[
                (E * triton.cdiv(n, BM) * triton.cdiv(d, BN),)](
                Ap, dO, dw2, gi, gi, off, n, d, rows, Ap.stride(0), dO.stride(0), dw2.stride(0), dw2.stride(1),
                GATHER_A=False, GATHER_B=True, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC, num_warps=w, num_stages=s))
            res[route, 'dW1', (BM, BN, BK, w, s)] = t(lambda: sk._wgrad_kernel.fn[
                (E * triton.cdiv(d, BM) * triton.cdiv(2 * n, BN),)](
                x, dH, dw1, gi, gi, off, d, 2 * n, rows, x.stride(0), dH.stride(0), dw1.stride(0), dw1.stride(1),
                GATHER_A=True, GATHER_B=False, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC=PREC, num_warps=w, num_stages=s))
    print(f"== E={E}: us per kernel call, best of two do_bench runs; * = best in its column", flush=True)
    tot = {'topk': 0.0, 'rounded': 0.0, 'rounded, top-K config': 0.0}
    for kern, cfgs in (('up', UP), ('y', MM), ('dX~', MM), ('down_bwd', DOWN), ('dW2', WG), ('dW1', WG)):
        bk = {r: min(cfgs, key=lambda c: res[r, kern, c]) for r in ('topk', 'rounded')}
        for c in cfgs:
            print(f"{kern:9s} {str(c):26s} topk {res['topk', kern, c]:7.1f}{'*' if c == bk['topk'] else ' '} "
                  f"rounded {res['rounded', kern, c]:7.1f}{'*' if c == bk['rounded'] else ' '}", flush=True)
        tot['topk'] += res['topk', kern, bk['topk']]
        tot['rounded'] += res['rounded', kern, bk['rounded']]
        tot['rounded, top-K config'] += res['rounded', kern, bk['topk']]
    print(f"E={E} sum of the six kernels, each at its best config: topk {tot['topk']:.0f} us, rounded "
          f"{tot['rounded']:.0f} us, rounded with top-K's best configs {tot['rounded, top-K config']:.0f} us", flush=True)


for E in ES:
    run(E)
