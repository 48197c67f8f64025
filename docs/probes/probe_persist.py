# GPU probe kept for docs/PERF.md (v5): a persistent weight-gradient kernel, defined here because
# it lost (sonic_kernels keeps its one-tile-per-program _wgrad_kernel), against _wgrad_kernel's
# best config; each config checked against _wgrad_kernel and timed twice, at the 1.4B, 7B, 30B
# and 120B shapes. Then where the host time of one sonic forward goes (cProfile).
# Run from the repo root:
#   python docs/probes/probe_persist.py [wgrad] [host] [host2] [prof] [sparse]
# v7 adds 'sparse': the token-rounding shape (16384, 1536, 256, K=8) at E = 64, 256 and 512, where
# an expert has ~2048, ~512 and ~256 rows (short loops), against both of _wgrad_kernel's 128x128x64
# configs (stages 2 and 3).
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cProfile, pstats, time
import torch, triton
import triton.language as tl
from triton.testing import do_bench
import sonic_kernels as sk, model
what = sys.argv[1:] = sys.argv[1:] or ['wgrad', 'host']
from probe_down import layer, layer_args, rel   # probe_down runs nothing when imported
dt = torch.bfloat16
SHAPES = {'1.4B': (40960, 768, 256, 128, 8), '7B': (24576, 1536, 256, 128, 8),
          '30B': (32768, 4096, 512, 128, 8), '120B': (32768, 4096, 2048, 64, 4)}
TILE = (128, 128, 64, 4, 3)   # v4's pick at every shape (probe_wgrad_r1/r2.log)
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages, programs per SM)
PERSIST = [(128, 128, 64, 4, 3, 2), (128, 128, 64, 4, 3, 3), (128, 128, 64, 4, 4, 2), (128, 128, 32, 4, 4, 2),
           (128, 256, 64, 8, 3, 1), (256, 128, 64, 8, 3, 1), (128, 256, 64, 8, 4, 1), (128, 256, 32, 8, 4, 1),
           (128, 128, 64, 8, 3, 2)]
SMS = torch.cuda.get_device_properties(0).multi_processor_count


@triton.jit
def wgrad_persistent_kernel(
    Am, B, C, gather_a, gather_b, offsets,   # C_e (M, N) = sum over e's rows r of Am[ia(r)]^T B[ib(r)]
    M, N, E,
    stride_ar, stride_br, stride_ce, stride_cm,
    GATHER_A: tl.constexpr, GATHER_B: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, CTAS_PER_SM: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # sonic_kernels._wgrad_kernel's GEMM on a persistent grid. Each expert has only ~T*K/E rows to
    # reduce over (32 steps of 64 at 120B), so a one-tile program spends much of its life filling its pipeline
    # and storing its tile. Here program p owns output tiles ("items") p, p+P, p+2P, ... (item =
    # e*Q + q) and runs all their BLOCK_K steps as ONE flat loop, so the pipeliner prefetches the
    # next tile's first rows while this tile is finished and stored. CTAS_PER_SM only sizes the grid.
    num_n = tl.cdiv(N, BLOCK_N)
    Q = tl.cdiv(M, BLOCK_M) * num_n                    # output tiles per expert
    n_items = E * Q
    pid, P = tl.program_id(0), tl.num_programs(0)
    # this program's steps in all: an item takes ceil(rows_e / BLOCK_K) steps, and an empty
    # expert one fully masked step, so that its zero gradient is stored too
    steps = 0
    for base in range(pid, n_items, P * 1024):
        it = base + P * tl.arange(0, 1024)
        ok = it < n_items
        cnt = tl.load(offsets + it // Q + 1, mask=ok, other=0) - tl.load(offsets + it // Q, mask=ok, other=0)
        steps += tl.sum(tl.where(ok, tl.maximum(tl.cdiv(cnt, BLOCK_K), 1), 0))
    ks = tl.arange(0, BLOCK_K)
    item = pid - P
    ki = -1                                            # step within the current item
    kt = 0                                             # the current item's step count
    e = 0
    pid_m = 0
    pid_n = 0
    start = 0
    end = 0
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for _ in range(0, steps):
        ki = tl.where(ki == kt - 1, 0, ki + 1)
        if ki == 0:                                    # the next item: its expert, tile and rows
            item += P
            e = item // Q
            pid_m = (item % Q) // num_n
            pid_n = item % num_n
            start = tl.load(offsets + e)
            end = tl.load(offsets + e + 1)
            kt = tl.maximum(tl.cdiv(end - start, BLOCK_K), 1)
        rows = start + ki * BLOCK_K + ks
        mask_r = rows < end
        cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        if GATHER_A:
            ia = tl.load(gather_a + rows, mask=mask_r, other=0).to(tl.int64)
        else:
            ia = rows.to(tl.int64)
        if GATHER_B:
            ib = tl.load(gather_b + rows, mask=mask_r, other=0).to(tl.int64)
        else:
            ib = rows.to(tl.int64)
        a = tl.load(Am + ia[:, None] * stride_ar + cm[None, :], mask=mask_r[:, None] & (cm < M)[None, :], other=0.0)
        b = tl.load(B + ib[:, None] * stride_br + cn[None, :], mask=mask_r[:, None] & (cn < N)[None, :], other=0.0)
        acc = tl.dot(tl.trans(a), b, acc, input_precision=DOT_PREC)
        if ki == kt - 1:                               # the item's last step: store its tile, start afresh
            c_ptrs = C + e.to(tl.int64) * stride_ce + cm[:, None].to(tl.int64) * stride_cm + cn[None, :]
            tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=(cm < M)[:, None] & (cn < N)[None, :])
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)


def wgrad(T, d, n, E, K, tiles=(TILE,), persist_list=PERSIST):
    torch.manual_seed(0)
    idx = torch.topk(torch.randn(T, E, device='cuda'), K).indices
    gi, off, *_ = sk.routing_metadata(torch.arange(T, device='cuda').repeat_interleave(K), idx.flatten(),
                                      torch.ones(T * K, device='cuda'), T, E)
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
            return sk._wgrad_kernel.fn[(E * triton.cdiv(M, BM) * triton.cdiv(N, BN),)](
                A, B, C, gi, gi, off, M, N, 0, A.stride(0), B.stride(0), C.stride(0), C.stride(1),
                GATHER_A=ga, GATHER_B=gb, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", num_warps=w, num_stages=s)
        def persist(v):
            BM, BN, BK, w, s, c = v
            grid = (min(E * triton.cdiv(M, BM) * triton.cdiv(N, BN), SMS * c),)
            return wgrad_persistent_kernel[grid](
                A, B, C, gi, gi, off, M, N, E, A.stride(0), B.stride(0), C.stride(0), C.stride(1),
                GATHER_A=ga, GATHER_B=gb, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, CTAS_PER_SM=c, DOT_PREC="tf32",
                num_warps=w, num_stages=s)
        ref = None
        for name, call in [("tile BM{} BN{} BK{} w{} s{}".format(*v), (lambda v=v: tile(v))) for v in tiles] + \
                [("persist BM{} BN{} BK{} w{} s{} ctas{}".format(*v), (lambda v=v: persist(v))) for v in persist_list]:
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


def host_us(f, calls):
    # us per call: to enqueue (no sync inside the timed loop; the queue never fills), to finish,
    # and the GPU time of its kernels (profiler)
    for _ in range(3): f()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls): f()
    t1 = time.perf_counter(); torch.cuda.synchronize(); t2 = time.perf_counter()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5): f()
        torch.cuda.synchronize()
    gpu = sum(e.device_time_total for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA) / 5
    return (t1 - t0) / calls * 1e6, (t2 - t0) / calls * 1e6, gpu


def host(T, d, n, E, K, route):
    # where the host's time goes in one forward: enqueue time against GPU time, then cProfile
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, route)
    f = lambda: model.experts_sonic(x, w1, w2, pt, pe, ps)
    enq, done, gpu = host_us(f, 20)
    print(f"== host {route} T={T} d={d} n={n} E={E} K={K}: enqueue {enq/1e3:.3f} ms/call, "
          f"done {done/1e3:.3f} ms/call, kernels {gpu/1e3:.3f} ms/call", flush=True)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(20): f()
    pr.disable(); torch.cuda.synchronize()
    pstats.Stats(pr, stream=sys.stdout).sort_stats('tottime').print_stats(18)


def host2(T=4096, d=768, n=256, E=128, K=8, calls=50):
    # the host time of one forward, piece by piece, on a shape small enough that the GPU keeps up
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, 'topk')
    xd, w1d, w2d, psd = x.detach(), w1.detach(), w2.detach(), ps.detach()
    gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt, pe, ps.detach().float(), T, E)
    R, tiles = pe.numel(), sk._max_tiles(pe.numel(), E)
    h = torch.empty(R, 2 * n, device='cuda', dtype=dt); a = torch.empty(R, n, device='cuda', dtype=dt)
    y = torch.empty(R, d, device='cuda', dtype=dt); out = torch.empty(T, d, device='cuda', dtype=dt)
    score = psd.float().contiguous()
    up = lambda: sk._up_swiglu_kernel[lambda M: (tiles * triton.cdiv(n, M["BLOCK_N"]),)](
        xd, w1d, h, a, gi, te, tr0, off, n, d, E, xd.stride(0), w1d.stride(0), w1d.stride(1), h.stride(0), a.stride(0),
        BLOCK_M=128, DOT_PREC="tf32")
    mm = lambda: sk._grouped_mm_kernel[lambda M: (tiles * triton.cdiv(d, M["BLOCK_N"]),)](
        a, w2d, y, te, tr0, off, d, n, E, a.stride(0), w2d.stride(0), w2d.stride(1), w2d.stride(2), y.stride(0),
        BLOCK_M=128, DOT_PREC="tf32")
    gs = lambda: sk._gather_sum_kernel[(T, 1)](y, score, rev, tokoff, out, d, y.stride(0), out.stride(0),
                                               HAS_S=True, BLOCK_D=1024)
    pieces = [('routing_metadata', lambda: sk.routing_metadata(pt, pe, score, T, E)),
              ('_up_swiglu_kernel launch (autotuner)', up), ('_grouped_mm_kernel launch (autotuner)', mm),
              ('_gather_sum_kernel launch (plain jit)', gs),
              ('_moe_fwd body, called directly', lambda: sk.moe_fwd_impl(xd, w1d, w2d, pt, pe, psd)),
              ('torch.ops.sonic.moe_fwd, no grad', lambda: torch.ops.sonic.moe_fwd(xd, w1d, w2d, pt, pe, psd)),
              ('model.experts_sonic, grad enabled', lambda: model.experts_sonic(x, w1, w2, pt, pe, ps)),
              ('torch.ops.sonic.moe_fwd fwd+bwd', lambda: torch.ops.sonic.moe_fwd(x, w1, w2, pt, pe, ps)[0].sum().backward()),
              ('model.experts_sonic fwd+bwd', lambda: model.experts_sonic(x, w1, w2, pt, pe, ps).sum().backward())]
    print(f"== host time per call, T={T} d={d} n={n} E={E} K={K}", flush=True)
    for name, f in pieces:
        enq, done, gpu = host_us(f, calls)
        print(f"{name:40s} enqueue {enq:7.0f} us   done {done:7.0f} us   kernels {gpu:7.0f} us", flush=True)


if 'sparse' in what:
    # short loops: two stages leave room for 2-3 programs an SM, so one tile's store can overlap
    short = [(128, 128, 64, 4, 2, 2), (128, 128, 64, 4, 2, 3), (128, 128, 64, 4, 3, 2), (128, 128, 32, 4, 3, 2),
             (128, 128, 32, 4, 2, 3), (128, 256, 64, 8, 2, 1), (128, 256, 64, 8, 3, 1)]
    for E in (64, 256, 512):
        wgrad(16384, 1536, 256, E, 8, tiles=((128, 128, 64, 4, 2), TILE), persist_list=short)
if 'host2' in what:
    host2()
    host2(24576, 1536, 256, 128, 8, calls=20)
if 'wgrad' in what:
    for name, shape in SHAPES.items():
        wgrad(*shape)
if 'host' in what:
    host(*SHAPES['7B'], 'topk')
    host(16384, 1536, 256, 256, 8, 'rounding')
if 'prof' in what:
    layer(*SHAPES['120B'], 'topk')
