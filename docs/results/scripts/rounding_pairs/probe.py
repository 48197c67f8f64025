"""Where _round_pairs_kernel's time goes at the README's rounding shape (T = 16384, E = 128, K = 8, nearest, tile
128): the kernel alone by do_bench under launch settings (BLOCK_T, num_warps) and with its fill loop off (fill = 0:
the unused slots left unwritten, a timing only), beside the select kernel and round_pairs whole, and the host's time
to enqueue round_pairs. Run from the repository root: python docs/results/scripts/rounding_pairs/probe.py"""
import sys, time
sys.path.insert(0, '.')
import torch
import triton
import triton.language as tl
import sonic_kernels as sk

T, E, K, tile, mode = 16384, 128, 8, 128, "nearest"
torch.manual_seed(0)
x = torch.randn(T, 1536, device='cuda', dtype=torch.bfloat16)
w = torch.randn(E, 1536, device='cuda') * 0.02
idx, gates, _, choices, S, CH = sk.router(x, w, torch.zeros(E, device='cuda'), K, "softmax_topk", True, "bf16x2",
                                           scores=True)
out = sk.round_pairs_impl(idx, gates, S, CH, choices, tile, mode)
sel = out[3]
ends = torch.cumsum(sel.sum(0, dtype=torch.int32), 0, dtype=torch.int32)
R_max = sk.round_capacity(T, E, K, tile, mode)
print(f"T {T} E {E} K {K}: pairs {int(ends[-1])} of R_max {R_max}")
bufs = [torch.empty(R_max, dtype=torch.int64, device='cuda'), torch.empty(R_max, dtype=torch.int64, device='cuda'),
        torch.empty(R_max, device='cuda'), torch.empty(R_max, dtype=torch.int64, device='cuda')]


@triton.jit
def _pairs_chunked(SEL, S, IDX, G, ENDS, PT, PE, PS, SRC, T, E, R_MAX, fill, K: tl.constexpr, BLOCK_T: tl.constexpr,
                   BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    # the same list, walking the experts in chunks of BLOCK_E with a running count per token, each token's
    # first slot read from ENDS[t - 1] (no per-token sum)
    pid = tl.program_id(0)
    t = pid * BLOCK_T + tl.arange(0, BLOCK_T)
    mt = t < T
    run = tl.load(ENDS + t - 1, mask=mt & (t > 0), other=0).to(tl.int64)
    for e0 in range(0, E, BLOCK_E):
        e = e0 + tl.arange(0, BLOCK_E)
        off = e[:, None].to(tl.int64) * T + t[None, :]
        take = tl.load(SEL + off, mask=(e < E)[:, None] & mt[None, :], other=0) != 0
        rank = tl.cumsum(take.to(tl.int32), 0)
        slot = run[None, :] + rank - 1
        k_of = tl.full((BLOCK_E, BLOCK_T), -1, tl.int32)
        for k in tl.static_range(K):
            ik = tl.load(IDX + t.to(tl.int64) * K + k, mask=mt, other=-1)
            k_of = tl.where(ik[None, :] == e[:, None], k, k_of)
        chosen = k_of >= 0
        g_src = t[None, :].to(tl.int64) * K + k_of
        gate = tl.load(G + g_src, mask=take & chosen, other=0.0)
        score = tl.load(S + off, mask=take & ~chosen, other=0.0)
        zero = tl.zeros((BLOCK_E, BLOCK_T), dtype=tl.int64)
        tl.store(PT + slot, zero + t[None, :], mask=take)
        tl.store(PE + slot, zero + e[:, None], mask=take)
        tl.store(PS + slot, tl.where(chosen, gate, score), mask=take)
        tl.store(SRC + slot, tl.where(chosen, g_src, T.to(tl.int64) * K + off), mask=take)
        run += tl.sum(take.to(tl.int32), axis=0)
    total = tl.load(ENDS + T - 1).to(tl.int64)
    unused = tl.zeros((BLOCK_F,), dtype=tl.int64)
    for r0 in range(pid * fill, pid * fill + fill, BLOCK_F):
        r = r0 + tl.arange(0, BLOCK_F)
        m = (r < R_MAX) & (r >= total)
        tl.store(PT + r, unused + T, mask=m)
        tl.store(PE + r, unused + E, mask=m)
        tl.store(PS + r, unused.to(tl.float32), mask=m)
        tl.store(SRC + r, unused - 1, mask=m)


def chunked(bt, be, warps):
    grid = sk.cdiv(T, bt)
    f = sk.cdiv(sk.cdiv(R_max, grid), 1024) * 1024
    _pairs_chunked[(grid,)](sel.view(torch.int8), S, idx, gates, ends, *bufs, T, E, R_max, f, K=K,
                            BLOCK_T=bt, BLOCK_E=be, BLOCK_F=1024, num_warps=warps)


def pairs(bt, warps, fill=True):
    grid = sk.cdiv(T, bt)
    f = sk.cdiv(sk.cdiv(R_max, grid), 1024) * 1024 if fill else 0
    sk._round_pairs_kernel[(grid,)](sel.view(torch.int8), S, idx, gates, ends, *bufs, T, E, R_max, f, K=K,
                                    BLOCK_T=bt, BLOCK_E=128, BLOCK_F=1024, num_warps=warps)


pairs(32, 4)
for a, b in zip(bufs[:3], out[:3]):
    assert torch.equal(a, b)
for bt, warps in [(32, 4), (32, 8), (32, 1), (8, 4), (16, 4), (64, 4), (128, 4), (256, 8)]:
    ms = triton.testing.do_bench(lambda: pairs(bt, warps), warmup=20, rep=100)
    ms0 = triton.testing.do_bench(lambda: pairs(bt, warps, fill=False), warmup=20, rep=100)
    print(f"_round_pairs_kernel BLOCK_T {bt:4d} warps {warps}: {ms * 1e3:8.1f} us, fill off {ms0 * 1e3:8.1f} us")
for bt, be, warps in [(32, 32, 4), (128, 16, 4), (128, 32, 4), (256, 8, 4), (64, 32, 2)]:
    for b in bufs:
        b.fill_(7)
    chunked(bt, be, warps)
    assert all(torch.equal(a, b) for a, b in zip(bufs[:3], out[:3])), (bt, be)
    ms = triton.testing.do_bench(lambda: chunked(bt, be, warps), warmup=20, rep=100)
    print(f"chunked BLOCK_T {bt:4d} BLOCK_E {be:3d} warps {warps}: {ms * 1e3:8.1f} us")
f = choices
ms = triton.testing.do_bench(lambda: sk._round_select_kernel[(E,)](S, CH.view(torch.int8), f, sel.view(torch.int8),
                             out[4], T, E, tile, MODE=0, BLOCK_T=2048), warmup=20, rep=100)
print(f"_round_select_kernel: {ms * 1e3:.1f} us")
ms = triton.testing.do_bench(lambda: sk.round_pairs_impl(idx, gates, S, CH, choices, tile, mode), warmup=20, rep=100)
print(f"round_pairs_impl whole: {ms * 1e3:.1f} us")
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(50):
    sk.round_pairs(idx, gates, S, CH, choices, tile, mode)
t1 = time.perf_counter()
torch.cuda.synchronize()
print(f"round_pairs host enqueue: {(t1 - t0) / 50 * 1e6:.1f} us a call")
