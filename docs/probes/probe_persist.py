# GPU probe kept for docs/PERF.md (v5): the persistent weight-gradient kernel (_wgrad_kernel) against
# v4's one-tile-per-program kernel (_wgrad_tile_kernel, its best config), each config checked
# against the tile kernel and timed twice, at the 1.4B, 7B, 30B and 120B shapes; then where the host
# time of one sonic forward goes (cProfile). Run from the repo root:
#   python docs/probes/probe_persist.py [wgrad] [host] [prof]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cProfile, pstats, time
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk, model
what = sys.argv[1:] = sys.argv[1:] or ['wgrad', 'host']
from probe_down import layer, layer_args, rel   # probe_down runs its own modes only, none of which are in argv
dt = torch.bfloat16
SHAPES = {'1.4B': (40960, 768, 256, 128, 8), '7B': (24576, 1536, 256, 128, 8),
          '30B': (32768, 4096, 512, 128, 8), '120B': (32768, 4096, 2048, 64, 4)}
TILE = (128, 128, 64, 4, 3)   # v4's pick at every shape (probe_wgrad_r1/r2.log)
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages, programs per SM)
PERSIST = [(128, 128, 64, 4, 3, 2), (128, 128, 64, 4, 3, 3), (128, 128, 64, 4, 4, 2), (128, 128, 32, 4, 4, 2),
           (128, 256, 64, 8, 3, 1), (256, 128, 64, 8, 3, 1), (128, 256, 64, 8, 4, 1), (128, 256, 32, 8, 4, 1),
           (128, 128, 64, 8, 3, 2)]
SMS = torch.cuda.get_device_properties(0).multi_processor_count


def wgrad(T, d, n, E, K):
    torch.manual_seed(0)
    idx = torch.topk(torch.randn(T, E, device='cuda'), K).indices
    gi, off, *_ = sk.routing_metadata(torch.arange(T, device='cuda').repeat_interleave(K), idx.flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device='cuda', dtype=dt); dO = torch.randn(T, d, device='cuda', dtype=dt)
    Ap = torch.randn(R, n, device='cuda', dtype=dt); dH = torch.randn(R, 2 * n, device='cuda', dtype=dt)
    # (title, FLOPs, A, B, C, M, N, GATHER_A, GATHER_B)
    for title, fl, A, B, C, M, N, ga, gb in (
            ('dW2', 2 * R * n * d, Ap, dO, torch.empty(E, n, d, device='cuda', dtype=dt), n, d, False, True),
            ('dW1', 4 * R * n * d, x, dH, torch.empty(E, d, 2 * n, device='cuda', dtype=dt), d, 2 * n, True, False)):
        print(f"== {title} T={T} d={d} n={n} E={E} K={K}", flush=True)
        def tile(v=TILE):
            BM, BN, BK, w, s = v
            return sk._wgrad_tile_kernel.fn[(E * triton.cdiv(M, BM) * triton.cdiv(N, BN),)](
                A, B, C, gi, gi, off, M, N, A.stride(0), B.stride(0), C.stride(0), C.stride(1),
                GATHER_A=ga, GATHER_B=gb, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
        def persist(v):
            BM, BN, BK, w, s, c = v
            grid = (min(E * triton.cdiv(M, BM) * triton.cdiv(N, BN), SMS * c),)
            return sk._wgrad_kernel.fn[grid](
                A, B, C, gi, gi, off, M, N, E, A.stride(0), B.stride(0), C.stride(0), C.stride(1),
                GATHER_A=ga, GATHER_B=gb, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, CTAS_PER_SM=c, DOT_PREC="tf32",
                num_warps=w, num_stages=s)
        ref = None
        for name, call in [("tile BM{} BN{} BK{} w{} s{}".format(*TILE), tile)] + \
                [("persist BM{} BN{} BK{} w{} s{} ctas{}".format(*v), (lambda v=v: persist(v))) for v in PERSIST]:
            try:
                C.fill_(float('nan'))
                k = call(); torch.cuda.synchronize()
                ref = C.clone() if ref is None else ref
                err = rel(C, ref)
                ms = [do_bench(call, warmup=10, rep=100) for _ in range(2)]
                print(f"{name:40s} {ms[0]*1e3:8.1f}us {ms[1]*1e3:8.1f}us {fl/min(ms)/1e9:5.0f}TF "
                      f"regs {k.n_regs} spills {k.n_spills} smem {k.metadata.shared} err-vs-tile {err:.1e}", flush=True)
            except Exception as ex:
                print(f"{name:40s} ERR {type(ex).__name__}: {str(ex)[:150]}", flush=True)


def host(T, d, n, E, K, route):
    # where the host's time goes in one forward: enqueue time against GPU time, then cProfile
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, route)
    f = lambda: model.experts_sonic(x, w1, w2, pt, pe, ps)
    for _ in range(3): f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(20): f()
    t1 = time.perf_counter(); torch.cuda.synchronize(); t2 = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5): f()
        torch.cuda.synchronize()
    gpu = sum(ev.device_time_total for ev in prof.events() if ev.device_type == torch.autograd.DeviceType.CUDA) / 5e3
    print(f"== host {route} T={T} d={d} n={n} E={E} K={K}: enqueue {(t1-t0)/20*1e3:.3f} ms/call, "
          f"done {(t2-t0)/20*1e3:.3f} ms/call, kernels {gpu:.3f} ms/call", flush=True)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(20): f()
    pr.disable(); torch.cuda.synchronize()
    pstats.Stats(pr, stream=sys.stdout).sort_stats('tottime').print_stats(18)


if 'wgrad' in what:
    for name, shape in SHAPES.items():
        wgrad(*shape)
if 'host' in what:
    host(*SHAPES['7B'], 'topk')
    host(16384, 1536, 256, 256, 8, 'rounding')
if 'prof' in what:
    layer(*SHAPES['120B'], 'topk')
