"""Experimental: the weight-gradient kernel as a warp-specialised Hopper kernel in Gluon (the gathered
operand is shared by the two consumer warpgroups, the TMA operand split between them)."""
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import tma, mbarrier, fence_async_shared, warpgroup_mma, warpgroup_mma_wait
from triton.experimental.gluon.language.nvidia.ampere import async_copy

PRODUCER_WARPS = gl.constexpr(4)
# Gluon renamed its copies after Triton 3.6 (async_copy_global_to_shared -> async_load)
_tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
_cp_async = getattr(async_copy, "async_load", None) or async_copy.async_copy_global_to_shared


@gluon.jit
def _ws_tile(tile, num_m, num_n, offsets):
    e = tile // (num_m * num_n)
    pm = (tile // num_n) % num_m
    pn = tile % num_n
    return e, pm, pn, gl.load(offsets + e), gl.load(offsets + e + 1)


@gluon.jit
def _ws_produce(desc, g_smem, t_smem, ready_t, ready_c, empty, G, gather, offsets, G_COLS, stride_gr,
                n_tiles, num_m, num_n, GATHER_A: gl.constexpr):
    # step after step into a ring of STAGES buffers: the gathered rows by cp.async (each thread's copies
    # arrive on ready_c as they land), the operand in grouped order by TMA, in two halves
    STAGES: gl.constexpr = g_smem.type.shape[0]
    BLOCK_K: gl.constexpr = g_smem.type.shape[1]
    BLOCK: gl.constexpr = g_smem.type.shape[2]
    layout: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [PRODUCER_WARPS, 1], [1, 0])
    ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, layout))
    cs = gl.arange(0, BLOCK, layout=gl.SliceLayout(0, layout))
    it = 0
    for tile in range(gl.program_id(0), n_tiles, gl.num_programs(0)):
        e, pm, pn, start, end = _ws_tile(tile, num_m, num_n, offsets)
        if GATHER_A:   # A gathered: its columns are the tile's rows; B's 2 * BLOCK columns by TMA
            g_col, t_col = pm * BLOCK, pn * 2 * BLOCK
        else:
            g_col, t_col = pn * BLOCK, pm * 2 * BLOCK
        # a step's row indices are read one step ahead, so their latency (~1 us) hides under the step
        # before: read in the step itself, they held every step of this warp back, and the producer set
        # the pace (about 20% slower on the H200)
        rows = start + ks
        idx_next = gl.load(gather + rows, mask=rows < end, other=0)
        for r0 in range(start, end, BLOCK_K):
            mrow = r0 + ks < end
            idx = idx_next.to(gl.int64)
            rows = r0 + BLOCK_K + ks
            idx_next = gl.load(gather + rows, mask=rows < end, other=0)
            s = it % STAGES
            mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)
            mbarrier.expect(ready_t.index(s), 2 * BLOCK_K * BLOCK * 2)
            _tma_load(desc, [r0, t_col], ready_t.index(s), t_smem.index(2 * s))
            _tma_load(desc, [r0, t_col + BLOCK], ready_t.index(s), t_smem.index(2 * s + 1))
            cols = g_col + cs
            ptrs = G + idx[:, None] * stride_gr + cols[None, :]
            _cp_async(g_smem.index(s), ptrs, mask=mrow[:, None] & (cols < G_COLS)[None, :])
            async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
            it += 1


@gluon.jit
def _ws_consume(g_smem, t_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n,
                GATHER_A: gl.constexpr, H: gl.constexpr):
    # one warpgroup: half H of each output tile, BLOCK x BLOCK, against the shared gathered block
    STAGES: gl.constexpr = g_smem.type.shape[0]
    BLOCK_K: gl.constexpr = g_smem.type.shape[1]
    BLOCK: gl.constexpr = g_smem.type.shape[2]
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                         instr_shape=[16, BLOCK, 16])
    it = 0
    for tile in range(gl.program_id(0), n_tiles, gl.num_programs(0)):
        e, pm, pn, start, end = _ws_tile(tile, num_m, num_n, offsets)
        n_steps = (end - start + BLOCK_K - 1) // BLOCK_K
        acc = gl.zeros((BLOCK, BLOCK), gl.float32, mma_layout)
        for j in range(0, n_steps):
            s = it % STAGES
            ph = (it // STAGES) & 1
            mbarrier.wait(ready_t.index(s), ph)
            mbarrier.wait(ready_c.index(s), ph)
            fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
            if GATHER_A:
                acc = warpgroup_mma(g_smem.index(s).permute((1, 0)), t_smem.index(2 * s + H), acc, is_async=True)
            else:
                acc = warpgroup_mma(t_smem.index(2 * s + H).permute((1, 0)), g_smem.index(s), acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
            if j > 0:
                mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            it += 1
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
        if n_steps > 0:
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
        if GATHER_A:
            row0, col0 = pm * BLOCK, pn * 2 * BLOCK + H * BLOCK
        else:
            row0, col0 = pm * 2 * BLOCK + H * BLOCK, pn * BLOCK
        rows = row0 + gl.arange(0, BLOCK, layout=gl.SliceLayout(1, mma_layout))
        cols = col0 + gl.arange(0, BLOCK, layout=gl.SliceLayout(0, mma_layout))
        ptrs = C + e.to(gl.int64) * stride_ce + rows[:, None].to(gl.int64) * stride_cm + cols[None, :]
        gl.store(ptrs, acc.to(C.dtype.element_ty), mask=(rows < M)[:, None] & (cols < N)[None, :])


@gluon.jit
def _ws_consumer_a0(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n):
    _ws_consume(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n, True, 0)


@gluon.jit
def _ws_consumer_a1(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n):
    _ws_consume(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n, True, 1)


@gluon.jit
def _ws_consumer_b0(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n):
    _ws_consume(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n, False, 0)


@gluon.jit
def _ws_consumer_b1(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n):
    _ws_consume(g, t, rt, rc, em, C, offsets, M, N, sce, scm, n_tiles, num_m, num_n, False, 1)


@gluon.jit
def _ws_producer_a(desc, g, t, rt, rc, em, G, gather, offsets, G_COLS, stride_gr, n_tiles, num_m, num_n):
    _ws_produce(desc, g, t, rt, rc, em, G, gather, offsets, G_COLS, stride_gr, n_tiles, num_m, num_n, True)


@gluon.jit
def _ws_producer_b(desc, g, t, rt, rc, em, G, gather, offsets, G_COLS, stride_gr, n_tiles, num_m, num_n):
    _ws_produce(desc, g, t, rt, rc, em, G, gather, offsets, G_COLS, stride_gr, n_tiles, num_m, num_n, False)


@gluon.jit
def _wgrad_ws_kernel(Am, B, C, gather, offsets, M, N, RA, RB, stride_ar, stride_br, stride_ce, stride_cm, E,
                     GATHER_A: gl.constexpr, BLOCK: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
                     CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = Am.dtype.element_ty
    layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK], dt)
    g_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, BLOCK], layout)
    t_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, BLOCK], layout)
    ready_t = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    ready_c = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(STAGES):
        mbarrier.init(ready_t.index(s), count=1)
        mbarrier.init(ready_c.index(s), count=PRODUCER_WARPS * 32)
        mbarrier.init(empty.index(s), count=2)
    if GATHER_A:
        desc = tma.make_tensor_descriptor(B, shape=[RB, N], strides=[stride_br, 1], block_shape=[BLOCK_K, BLOCK],
                                          layout=layout)
        num_m = (M + BLOCK - 1) // BLOCK
        num_n = (N + 2 * BLOCK - 1) // (2 * BLOCK)
        pargs = (desc, g_smem, t_smem, ready_t, ready_c, empty, Am, gather, offsets, M, stride_ar)
    else:
        desc = tma.make_tensor_descriptor(Am, shape=[RA, M], strides=[stride_ar, 1], block_shape=[BLOCK_K, BLOCK],
                                          layout=layout)
        num_m = (M + 2 * BLOCK - 1) // (2 * BLOCK)
        num_n = (N + BLOCK - 1) // BLOCK
        pargs = (desc, g_smem, t_smem, ready_t, ready_c, empty, B, gather, offsets, N, stride_br)
    n_tiles = E * num_m * num_n
    pargs = pargs + (n_tiles, num_m, num_n)
    cargs = (g_smem, t_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n)
    if GATHER_A:
        gl.warp_specialize([(_ws_consumer_a0, cargs), (_ws_consumer_a1, cargs), (_ws_producer_a, pargs)],
                           [4, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_ws_consumer_b0, cargs), (_ws_consumer_b1, cargs), (_ws_producer_b, pargs)],
                           [4, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])


def wgrad_ws(a, b, gather_idx, offsets, gather_a, out_dtype=None, n_prog=None, BLOCK_K=64, STAGES=4,
             consumer_regs=216, producer_regs=72):
    E = offsets.numel() - 1
    M, N = a.shape[1], b.shape[1]
    c = torch.empty(E, M, N, device=a.device, dtype=out_dtype or a.dtype)
    n_tiles = E * (triton.cdiv(M, 128) * triton.cdiv(N, 256) if gather_a else triton.cdiv(M, 256) * triton.cdiv(N, 128))
    n_prog = n_prog or min(n_tiles, torch.cuda.get_device_properties(a.device).multi_processor_count)
    _wgrad_ws_kernel[(n_prog,)](a, b, c, gather_idx, offsets, M, N, a.shape[0], b.shape[0], a.stride(0), b.stride(0),
                                c.stride(0), c.stride(1), E, GATHER_A=gather_a, BLOCK=128,
                                BLOCK_K=BLOCK_K, STAGES=STAGES, CONSUMER_REGS=consumer_regs,
                                PRODUCER_REGS=producer_regs, num_warps=4)
    return c
