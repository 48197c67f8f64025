"""The up-projection with its h and a tiles stored by TMA (descriptors clipped at the segment's end)
against the kernel as it is, at the four issue shapes: time (median of 20, CUDA events) and whether
h and a are bit-identical; cuBLAS's dense (R, d) x (d, 2n) in the same run."""
import torch, triton, triton.language as tl
import sonic_kernels as sk
from sonic_kernels import _tile_rows, BLOCK_M

@triton.autotune(configs=[triton.Config(dict(BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=4),
                          triton.Config(dict(BLOCK_N=128, BLOCK_K=32), num_warps=8, num_stages=5),
                          triton.Config(dict(BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=3)],
                 key=["N", "D", "USE_TMA"])
@triton.jit
def up_store_kernel(X, W1, H, A, gather_idx, tile_expert, tile_row0, offsets, N, D, E,
                    stride_xt, stride_we, stride_wk, stride_hr, stride_ar,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
                    USE_TMA: tl.constexpr):
    num_n = tl.cdiv(N, BLOCK_N)
    pid_m, pid_n = tl.program_id(0) // num_n, tl.program_id(0) % num_n
    e, row0, row_end = _tile_rows(tile_expert, tile_row0, offsets, pid_m, E)
    if e >= E:
        return
    rows = row0 + tl.arange(0, BLOCK_M)
    mask_m = rows < row_end
    tok = tl.load(gather_idx + rows, mask=mask_m, other=0).to(tl.int64)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = cols < N
    ks = tl.arange(0, BLOCK_K)
    x_ptrs = X + tok[:, None] * stride_xt + ks[None, :]
    if USE_TMA:
        w_desc = tl.make_tensor_descriptor(W1, shape=[E, D, 2 * N], strides=[stride_we, stride_wk, 1],
                                           block_shape=[1, BLOCK_K, BLOCK_N])
    else:
        w_ptrs = W1 + e.to(tl.int64) * stride_we + ks[:, None] * stride_wk + cols[None, :]
    acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        mask_k = (k0 + ks) < D
        x = tl.load(x_ptrs, mask=mask_k[None, :], other=0.0)
        if USE_TMA:
            wg = w_desc.load([e, k0, pid_n * BLOCK_N]).reshape(BLOCK_K, BLOCK_N)
            wu = w_desc.load([e, k0, N + pid_n * BLOCK_N]).reshape(BLOCK_K, BLOCK_N)
        else:
            wg = tl.load(w_ptrs, mask=mask_k[:, None] & mask_n[None, :], other=0.0)
            wu = tl.load(w_ptrs + N, mask=mask_k[:, None] & mask_n[None, :], other=0.0)
            w_ptrs += BLOCK_K * stride_wk
        acc_g = tl.dot(x, wg, acc_g, input_precision=DOT_PREC)
        acc_u = tl.dot(x, wu, acc_u, input_precision=DOT_PREC)
        x_ptrs += BLOCK_K
    g = acc_g.to(H.dtype.element_ty)
    u = acc_u.to(H.dtype.element_ty)
    gf, uf = g.to(tl.float32), u.to(tl.float32)
    a = gf * tl.sigmoid(gf) * uf
    # TMA stores, clipped at the segment's end (the next expert's rows) and at n (each half of h)
    h_desc = tl.make_tensor_descriptor(H, shape=[row_end, 2, N], strides=[stride_hr, N, 1], block_shape=[BLOCK_M, 1, BLOCK_N])
    a_desc = tl.make_tensor_descriptor(A, shape=[row_end, N], strides=[stride_ar, 1], block_shape=[BLOCK_M, BLOCK_N])
    h_desc.store([row0, 0, pid_n * BLOCK_N], g.reshape(BLOCK_M, 1, BLOCK_N))
    h_desc.store([row0, 1, pid_n * BLOCK_N], u.reshape(BLOCK_M, 1, BLOCK_N))
    a_desc.store([row0, pid_n * BLOCK_N], a.to(A.dtype.element_ty))


def up_store(x, w1, r):
    R, (E, d, n2) = r.gather_idx.numel(), w1.shape
    n = n2 // 2
    h = torch.empty(R, 2 * n, device=x.device, dtype=x.dtype)
    a = torch.empty(R, n, device=x.device, dtype=x.dtype)
    sk._set_allocator()
    tiles = r.tile_expert.numel()
    grid = lambda META: (tiles * triton.cdiv(n, META["BLOCK_N"]),)
    up_store_kernel[grid](x, w1, h, a, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, n, d, E,
                          x.stride(0), w1.stride(0), w1.stride(1), h.stride(0), a.stride(0),
                          BLOCK_M=BLOCK_M, DOT_PREC="tf32", USE_TMA=sk._use_tma(w1, col=n, k=d))
    return h, a


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


SHAPES = {"1.4B 256/128/8": (40960, 768, 256, 128, 8), "7B 256/128/8": (24576, 1536, 256, 128, 8),
          "30B 256/256/16": (32768, 4096, 256, 256, 16), "120B 2048/64/4": (32768, 4096, 2048, 64, 4)}
torch.manual_seed(0)
for name, (T, d, n, E, K) in SHAPES.items():
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device="cuda", dtype=torch.bfloat16) / d ** 0.5
    probs = torch.softmax(torch.randn(T, E, device="cuda"), -1)
    gates, idx = probs.topk(K, -1)
    pair_tok = torch.arange(T, device="cuda").repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), gates.flatten(), T, E)
    h0, a0 = sk.up_swiglu(x, w1, r)
    h1, a1 = up_store(x, w1, r)
    same = torch.equal(h0, h1) and torch.equal(a0, a1)
    R = T * K
    flops = 2 * R * d * 2 * n
    xs = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    wd = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    t_base = timed(lambda: sk.up_swiglu(x, w1, r))
    t_new = timed(lambda: up_store(x, w1, r))
    t_base2 = timed(lambda: sk.up_swiglu(x, w1, r))
    t_new2 = timed(lambda: up_store(x, w1, r))
    t_cublas = timed(lambda: torch.mm(xs, wd))
    tf = lambda t: flops / t / 1e9
    print(f"{name}: identical {same}; pointer stores {t_base*1e3:.0f}/{t_base2*1e3:.0f} us ({tf(t_base):.0f}/{tf(t_base2):.0f} TFLOPS), "
          f"TMA stores {t_new*1e3:.0f}/{t_new2*1e3:.0f} us ({tf(t_new):.0f}/{tf(t_new2):.0f}), cuBLAS {t_cublas*1e3:.0f} us ({tf(t_cublas):.0f}); "
          f"configs {up_store_kernel.best_config}", flush=True)
    del x, w1, xs, wd, h0, a0, h1, a1, r
    torch.cuda.empty_cache()
