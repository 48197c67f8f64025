"""dA' on sm_90 with the epilogue's h rows prefetched by cp.async into a ring of chunk buffers (issued
before the accumulators are ready, NBUF-1 chunks ahead) against the kernel as it is: bit-identity
of dH, A', dS and time (median of 20) at the four issue shapes, with cuBLAS's dense dA' beside."""
import sys, torch, triton
import sonic_kernels as sk
from sonic_kernels import (gl, gluon, mbarrier, gl_async_copy, _cp_async, _cta_barrier, _ws_ring, _ws_items,
                           _db_item, _db_produce, _db_consumer0, _db_consumer1, gl_tma, WG_PRODUCER_WARPS, BLOCK_M)


@gluon.jit
def _issue_h(h_smem, b: gl.constexpr, H, rows, row_end, cols, mcol, N, stride_hr):
    mask = (rows < row_end)[:, None] & mcol
    hp = H + rows.to(gl.int64)[:, None] * stride_hr + cols[None, :]
    _cp_async(h_smem.index(2 * b), hp, mask=mask)
    _cp_async(h_smem.index(2 * b + 1), hp + N, mask=mask)


@gluon.jit
def _db_epilogue_pf(e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
                    N, R, stride_hr, stride_ar, num_n, n_items):
    HALF: gl.constexpr = e_smem.type.shape[1]
    BLOCK_N: gl.constexpr = e_smem.type.shape[2]
    CHUNK: gl.constexpr = h_smem.type.shape[1]
    NBUF: gl.constexpr = h_smem.type.shape[0] // 2
    PER_HALF: gl.constexpr = HALF // CHUNK
    NCH: gl.constexpr = 2 * PER_HALF
    epi: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
    rs = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, epi))
    cs = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, epi))
    ti = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
        cols = pn * BLOCK_N + cs
        mcol = (cols < N)[None, :]
        for q in gl.static_range(NBUF - 1):   # h does not wait for the MMAs
            _issue_h(h_smem, q, H, row0 + q * CHUNK + rs, row_end, cols, mcol, N, stride_hr)
            gl_async_copy.commit_group()
        mbarrier.wait(epi_ready, ti & 1)
        for q in gl.static_range(NCH):
            if q + NBUF - 1 < NCH:
                _issue_h(h_smem, (q + NBUF - 1) % NBUF, H, row0 + (q + NBUF - 1) * CHUNK + rs, row_end, cols, mcol,
                         N, stride_hr)
            gl_async_copy.commit_group()
            gl_async_copy.wait_group(NBUF - 1)   # chunk q's copies (this thread's) have landed
            rows = row0 + q * CHUNK + rs
            mrow = rows < row_end
            mask = mrow[:, None] & mcol
            rows64 = rows.to(gl.int64)
            da_raw = e_smem.index(q // PER_HALF).slice((q % PER_HALF) * CHUNK, CHUNK, dim=0).load(epi)
            g = h_smem.index(2 * (q % NBUF)).load(epi).to(gl.float32)
            u = h_smem.index(2 * (q % NBUF) + 1).load(epi).to(gl.float32)
            sc = gl.load(S + rows64, mask=mrow, other=0.0)
            sig = 1.0 / (1.0 + gl.exp(-g))
            silu = g * sig
            a = silu * u
            da = da_raw * sc[:, None]
            dp = dH + rows64[:, None] * stride_hr + cols[None, :]
            gl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], (a * sc[:, None]).to(Ap.dtype.element_ty), mask=mask)
            gl.store(dp, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask)
            gl.store(dp + N, (da * silu).to(dH.dtype.element_ty), mask=mask)
            gl.store(dS_part + pn.to(gl.int64) * R + rows64, gl.sum(da_raw * a, axis=1), mask=mrow)
        _cta_barrier()
        mbarrier.arrive(epi_empty, count=1)
        ti += 1


@gluon.jit
def _db_pf_kernel(dO, W2, H, S, gather, tile_expert, tile_row0, offsets, dH, Ap, dS_part,
                  N, D, E, R, stride_ot, stride_hr, stride_ar,
                  BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr, NB: gl.constexpr,
                  CHUNK: gl.constexpr, NBUF: gl.constexpr,
                  CONSUMER_REGS: gl.constexpr, EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = dO.dtype.element_ty
    HALF: gl.constexpr = BLOCK_M // 2
    g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_K], dt)
    w_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, BLOCK_K], dt)
    g_smem = gl.allocate_shared_memory(dt, [2 * STAGES, HALF, BLOCK_K], g_layout)
    w_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_N, BLOCK_K], w_layout)
    e_smem = gl.allocate_shared_memory(gl.float32, [2, HALF, BLOCK_N], gl.SwizzledSharedLayout(2, 1, 8, order=[1, 0]))
    h_smem = gl.allocate_shared_memory(dt, [2 * NBUF, CHUNK, BLOCK_N], gl.SwizzledSharedLayout(1, 1, 1, order=[1, 0]))
    ready_t, ready_c, empty = _ws_ring(STAGES)
    epi_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    epi_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    mbarrier.init(epi_ready, count=2)
    mbarrier.init(epi_empty, count=1)
    w_desc = gl_tma.make_tensor_descriptor(W2, shape=[E * N, D], strides=[D, 1], block_shape=[BLOCK_N, BLOCK_K],
                                           layout=w_layout)
    num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
    cargs = (g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,
             offsets, D, num_n, n_items)
    eargs = (e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
             N, R, stride_hr, stride_ar, num_n, n_items)
    pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
             N, D, stride_ot, num_n, n_items)
    gl.warp_specialize([(_db_consumer0, cargs), (_db_consumer1, cargs), (_db_epilogue_pf, eargs), (_db_produce, pargs)],
                       [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])


def db_pf(dout, w2, h, r, cfg):
    R, (E, n, d) = h.shape[0], w2.shape
    dH = torch.empty(R, 2 * n, device=h.device, dtype=h.dtype)
    Ap = torch.empty(R, n, device=h.device, dtype=h.dtype)
    bn = cfg["BLOCK_N"]
    dS_part = torch.zeros(triton.cdiv(n, bn), R, device=h.device, dtype=torch.float32)
    sk._set_allocator()
    items = r.tile_expert.numel() * triton.cdiv(n, bn)
    _db_pf_kernel[(sk._n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part,
        n, d, E, R, dout.stride(0), h.stride(0), Ap.stride(0), BLOCK_M=BLOCK_M, NB=triton.next_power_of_2(E),
        num_warps=4, **cfg)
    return dH, Ap, dS_part.sum(0)


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


BASE = dict(sk.DB_CONFIG)
VARIANTS = {"s4 nbuf4": dict(BASE, STAGES=4, CHUNK=16, NBUF=4), "s3 nbuf4": dict(BASE, STAGES=3, CHUNK=16, NBUF=4),
            "s3 nbuf8": dict(BASE, STAGES=3, CHUNK=16, NBUF=8)}
SHAPES = dict(list({"1.4B 256/128/8": (40960, 768, 256, 128, 8), "7B 256/128/8": (24576, 1536, 256, 128, 8),
          "30B 256/256/16": (32768, 4096, 256, 256, 16), "120B 2048/64/4": (32768, 4096, 2048, 64, 4)}.items())[:int(sys.argv[1]) if len(sys.argv) > 1 else 4])
torch.manual_seed(0)
for name, (T, d, n, E, K) in SHAPES.items():
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device="cuda", dtype=torch.bfloat16) / d ** 0.5
    w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16) / n ** 0.5
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    probs = torch.softmax(torch.randn(T, E, device="cuda"), -1)
    gates, idx = probs.topk(K, -1)
    pair_tok = torch.arange(T, device="cuda").repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), gates.flatten(), T, E)
    h, _ = sk.up_swiglu(x, w1, r)
    R = h.shape[0]
    ref = sk.down_bwd(dout, w2, h, r)
    flops = 2 * R * n * d
    t0 = timed(lambda: sk.down_bwd(dout, w2, h, r))
    dd = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    wd = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    tc = timed(lambda: torch.mm(dd, wd))
    line = f"{name}: now {t0*1e3:.0f} us ({flops/t0/1e9:.0f} TFLOPS), cuBLAS {tc*1e3:.0f} us ({flops/tc/1e9:.0f})"
    for vname, cfg in VARIANTS.items():
        try:
            out = db_pf(dout, w2, h, r, cfg)
            same = all(torch.equal(a, b) for a, b in zip(out, ref))
            t = timed(lambda: db_pf(dout, w2, h, r, cfg))
            line += f"; {vname} {t*1e3:.0f} us ({flops/t/1e9:.0f}) identical {same}"
        except Exception as ex:
            import traceback
            if not getattr(sys, "_shown", False):
                traceback.print_exc(); sys._shown = True
            line += f"; {vname} failed: {type(ex).__name__}: {str(ex)[-300:]}"
    t0b = timed(lambda: sk.down_bwd(dout, w2, h, r))
    print(line + f"; now again {t0b*1e3:.0f} us", flush=True)
    del x, w1, w2, dout, h, ref, dd, wd, r
    torch.cuda.empty_cache()
