# GPU probe kept for docs/PERF.md (v5): the dA' kernel with dH moved out of its epilogue. Compiled
# offline for sm_90 (tests/test_sm90.py's method), the epilogue's dH math is what spills: without
# it a single 128 x 128 accumulator on 8 warps needs 255 registers and spills none, where the
# fused kernel spills 656 bytes. Here the epilogue stores da = s * dA' (bf16, in dH's gate half) and
# A', and dh_kernel then forms dH in place from da and h, for 8 more bytes of traffic per (row,
# column). Both variants are checked against the fused kernel and timed at the four shapes.
# Run from the repo root:  python docs/probes/probe_dh.py
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton
import triton.language as tl
from triton.testing import do_bench
import sonic_kernels as sk
dt = torch.bfloat16
rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm()).item()
SHAPES = {'1.4B': (40960, 768, 256, 128, 8), '7B': (24576, 1536, 256, 128, 8),
          '30B': (32768, 4096, 512, 128, 8), '120B': (32768, 4096, 2048, 64, 4)}
FUSED = [(2, 2, 64, 64, 4, 4), (2, 2, 128, 64, 8, 4), (1, 2, 64, 64, 8, 5)]   # the autotune list
# (SPLIT_M, NACC, BLOCK_N, BLOCK_K, warps, stages)
SPLIT = [(1, 1, 128, 64, 8, 4), (1, 1, 128, 64, 8, 3), (1, 1, 128, 32, 8, 5), (2, 1, 128, 64, 4, 4),
         (2, 1, 128, 64, 4, 3), (1, 2, 64, 64, 8, 5), (2, 2, 64, 64, 4, 4), (1, 1, 256, 64, 8, 3)]


@triton.jit
def split_epilogue(acc, s, rows64, mask_m, cols, N, H, dH, Ap, stride_hr, stride_ar):
    # recompute a from h; store A' and da = s * dA' (into dH's gate half); return the dS share
    mask = mask_m[:, None] & (cols < N)[None, :]
    h_ptrs = H + rows64[:, None] * stride_hr + cols[None, :]
    g = tl.load(h_ptrs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(h_ptrs + N, mask=mask, other=0.0).to(tl.float32)
    a = g * tl.sigmoid(g) * u
    ds = tl.sum(acc * a, axis=1)
    da = (acc * s[:, None]).to(dH.dtype.element_ty)
    ap = (a * s[:, None]).to(Ap.dtype.element_ty)
    tl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], ap, mask=mask)
    tl.store(dH + rows64[:, None] * stride_hr + cols[None, :], da, mask=mask)
    return ds


@triton.jit
def down_bwd_split_kernel(
    dO, W2, H, S, gather_idx, tile_expert, tile_row0, offsets,   # dO (T, d), W2 (E, n, d), H (R, 2n), S (R,) row scores
    dH, Ap, dS_part,                                             # out: dH (R, 2n), A' (R, n), dS_part (n_tiles, R) fp32
    N, D, E, R,
    stride_ot, stride_we, stride_wn, stride_wd, stride_hr, stride_ar,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
    SPLIT_M: tl.constexpr, NACC: tl.constexpr,
):
    # sonic_kernels._down_bwd_kernel with split_epilogue in place of _down_bwd_epilogue
    SUB_M: tl.constexpr = BLOCK_M // SPLIT_M
    num_n = tl.cdiv(N, NACC * BLOCK_N)
    pid_m, pid_n = tl.program_id(0) // num_n, tl.program_id(0) % num_n
    tile = pid_m // SPLIT_M
    e = tl.load(tile_expert + tile)
    if e >= E:
        return
    row0 = tl.load(tile_row0 + tile) + (pid_m % SPLIT_M) * SUB_M
    row_end = tl.load(offsets + e + 1)
    if row0 >= row_end:  # the empty lower half of an expert's last tile
        return
    rows = row0 + tl.arange(0, SUB_M)
    mask_m = rows < row_end
    tok = tl.load(gather_idx + rows, mask=mask_m, other=0).to(tl.int64)
    cols = pid_n * NACC * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    # dA' = dO[gather] @ W2_e^T; W2_e^T (d, n) is read through strides, never transposed in memory
    o_ptrs = dO + tok[:, None] * stride_ot + ks[None, :]
    w_ptrs = W2 + e.to(tl.int64) * stride_we + ks[:, None] * stride_wd + cols[None, :] * stride_wn
    mask_n0, mask_n1 = cols < N, (cols + BLOCK_N) < N
    acc0 = tl.zeros((SUB_M, BLOCK_N), dtype=tl.float32)
    acc1 = tl.zeros((SUB_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        mask_k = (k0 + ks) < D
        o = tl.load(o_ptrs, mask=mask_k[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=mask_k[:, None] & mask_n0[None, :], other=0.0)
        acc0 = tl.dot(o, w, acc0, input_precision=DOT_PREC)
        if NACC == 2:
            w = tl.load(w_ptrs + BLOCK_N * stride_wn, mask=mask_k[:, None] & mask_n1[None, :], other=0.0)
            acc1 = tl.dot(o, w, acc1, input_precision=DOT_PREC)
        o_ptrs += BLOCK_K
        w_ptrs += BLOCK_K * stride_wd
    rows64 = tl.where(mask_m, rows, row0).to(tl.int64)
    s = tl.load(S + rows64, mask=mask_m, other=0.0)
    ds = split_epilogue(acc0, s, rows64, mask_m, cols, N, H, dH, Ap, stride_hr, stride_ar)
    if NACC == 2:
        ds += split_epilogue(acc1, s, rows64, mask_m, cols + BLOCK_N, N, H, dH, Ap, stride_hr, stride_ar)
    # this program's share of the row sum; the N programs' shares are summed by the launcher
    tl.store(dS_part + pid_n.to(tl.int64) * R + rows64, ds, mask=mask_m)


@triton.jit
def dh_kernel(dH, H, offsets, N, E, stride_hr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    # dH in place: gate half = da * u * dsilu(g), up half = da * silu(g), over the routed rows only
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows < tl.load(offsets + E))[:, None] & (cols < N)[None, :]
    off = rows.to(tl.int64)[:, None] * stride_hr + cols[None, :]
    da = tl.load(dH + off, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(H + off, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(H + off + N, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    silu = g * sig
    tl.store(dH + off, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask)
    tl.store(dH + off + N, (da * silu).to(dH.dtype.element_ty), mask=mask)


def run(T, d, n, E, K):
    torch.manual_seed(0)
    w2 = (torch.randn(E, n, d, device='cuda') / n**0.5).to(dt)
    logits = torch.randn(T, E, device='cuda')
    top, idx = torch.topk(logits, K); s = torch.softmax(top, -1).flatten()
    pt = torch.arange(T, device='cuda').repeat_interleave(K); pe = idx.flatten()
    gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt, pe, s, T, E)
    R = T * K; tiles = sk._max_tiles(R, E)
    dO = torch.randn(T, d, device='cuda').to(dt); h = torch.randn(R, 2 * n, device='cuda').to(dt)
    dH = torch.empty(R, 2 * n, device='cuda', dtype=dt); Ap = torch.empty(R, n, device='cuda', dtype=dt)
    dSp = torch.zeros(triton.cdiv(n, 32), R, device='cuda')
    print(f"== dA' + dH, T={T} d={d} n={n} E={E} K={K}", flush=True)
    def launch(kern, v):
        SM, NA, BN, BK, w, st = v
        return kern[(tiles * SM * triton.cdiv(n, NA * BN),)](dO, w2, h, rs, gi, te, tr0, off, dH, Ap, dSp, n, d, E, R,
            dO.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), h.stride(0), Ap.stride(0),
            BLOCK_M=128, BLOCK_N=BN, BLOCK_K=BK, DOT_PREC="tf32", SPLIT_M=SM, NACC=NA, num_warps=w, num_stages=st)
    def dh():
        dh_kernel[(triton.cdiv(R, 32), triton.cdiv(n, 256))](dH, h, off, n, E, h.stride(0), BLOCK_R=32, BLOCK_N=256)
    ref = None
    variants = [('fused', v, lambda v=v: launch(sk._down_bwd_kernel.fn, v)) for v in FUSED] + \
               [('split', v, lambda v=v: (launch(down_bwd_split_kernel, v), dh())[0]) for v in SPLIT]
    for kind, v, fn in variants:
        name = "{} SPLIT_M={} NACC={} BN{} BK{} w{} s{}".format(kind, *v)
        try:
            dSp.zero_(); k = fn(); torch.cuda.synchronize()
            out = (dH.clone(), Ap.clone(), dSp.sum(0))
            ref = ref or out
            err = max(rel(a, b) for a, b in zip(out, ref))
            ms = [do_bench(fn, warmup=10, rep=60) for _ in range(2)]
            extra = f" (dH pass {do_bench(dh, warmup=10, rep=60)*1e3:.0f}us)" if kind == 'split' else ''
            print(f"{name:46s} {ms[0]*1e3:8.1f}us {ms[1]*1e3:8.1f}us {2*R*n*d/min(ms)/1e9:5.0f}TF "
                  f"regs {k.n_regs} spills {k.n_spills} err-vs-first {err:.1e}{extra}", flush=True)
        except Exception as ex:
            print(f"{name:46s} ERR {type(ex).__name__}: {str(ex)[:150]}", flush=True)


for shape in SHAPES.values():
    run(*shape)
