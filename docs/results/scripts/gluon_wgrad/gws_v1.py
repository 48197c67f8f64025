"""Experimental: the weight-gradient kernel as a warp-specialised Hopper kernel in Gluon."""
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import tma, mbarrier, fence_async_shared, warpgroup_mma, warpgroup_mma_wait
from triton.experimental.gluon.language.nvidia.ampere import async_copy

PRODUCER_WARPS = gl.constexpr(4)


@gluon.jit
def _ws_tile(tile, num_m, num_n, offsets):
    e = tile // (num_m * num_n)
    pm = (tile // num_n) % num_m
    pn = tile % num_n
    start = gl.load(offsets + e)
    end = gl.load(offsets + e + 1)
    return e, pm, pn, start, end


@gluon.jit
def _ws_produce(desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
                n_tiles, num_m, num_n, GATHER_A: gl.constexpr):
    STAGES: gl.constexpr = a_smem.type.shape[0]
    BLOCK_K: gl.constexpr = a_smem.type.shape[1]
    BLOCK_M: gl.constexpr = a_smem.type.shape[2]
    HALF_N: gl.constexpr = b_smem.type.shape[2]
    # loads step after step into a ring of STAGES buffers: the operand in grouped order by TMA, the
    # gathered one by cp.async, each thread's copies arriving on ready_c as they land
    layout: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [PRODUCER_WARPS, 1], [1, 0])
    ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, layout))
    cs = gl.arange(0, 128, layout=gl.SliceLayout(0, layout))
    it = 0
    for tile in range(gl.program_id(0), n_tiles, gl.num_programs(0)):
        e, pm, pn, start, end = _ws_tile(tile, num_m, num_n, offsets)
        for r0 in range(start, end, BLOCK_K):
            s = it % STAGES
            mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)
            rows = r0 + ks
            mrow = rows < end
            idx = gl.load(gather + rows, mask=mrow, other=0).to(gl.int64)
            if GATHER_A:
                mbarrier.expect(ready_t.index(s), 2 * BLOCK_K * HALF_N * 2)
                tma.async_copy_global_to_shared(desc, [r0, pn * 2 * HALF_N], ready_t.index(s), b_smem.index(2 * s))
                tma.async_copy_global_to_shared(desc, [r0, pn * 2 * HALF_N + HALF_N], ready_t.index(s),
                                                b_smem.index(2 * s + 1))
                cols = pm * BLOCK_M + cs
                ptrs = Am + idx[:, None] * stride_ar + cols[None, :]
                async_copy.async_copy_global_to_shared(a_smem.index(s), ptrs, mask=mrow[:, None] & (cols < M)[None, :])
            else:
                mbarrier.expect(ready_t.index(s), BLOCK_K * BLOCK_M * 2)
                tma.async_copy_global_to_shared(desc, [r0, pm * BLOCK_M], ready_t.index(s), a_smem.index(s))
                for h in gl.static_range(2):
                    cols = pn * 2 * HALF_N + h * HALF_N + cs
                    ptrs = B + idx[:, None] * stride_br + cols[None, :]
                    async_copy.async_copy_global_to_shared(b_smem.index(2 * s + h), ptrs,
                                                           mask=mrow[:, None] & (cols < N)[None, :])
            async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
            it += 1


@gluon.jit
def _ws_consume(a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n,
                H: gl.constexpr):
    STAGES: gl.constexpr = a_smem.type.shape[0]
    BLOCK_K: gl.constexpr = a_smem.type.shape[1]
    BLOCK_M: gl.constexpr = a_smem.type.shape[2]
    HALF_N: gl.constexpr = b_smem.type.shape[2]
    # one warpgroup: columns [H * HALF_N, (H + 1) * HALF_N) of each 128 x 2*HALF_N output tile
    mma_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                         instr_shape=[16, HALF_N, 16])
    it = 0
    for tile in range(gl.program_id(0), n_tiles, gl.num_programs(0)):
        e, pm, pn, start, end = _ws_tile(tile, num_m, num_n, offsets)
        n_steps = (end - start + BLOCK_K - 1) // BLOCK_K
        acc = gl.zeros((BLOCK_M, HALF_N), gl.float32, mma_layout)
        for j in range(0, n_steps):
            s = it % STAGES
            ph = (it // STAGES) & 1
            mbarrier.wait(ready_t.index(s), ph)
            mbarrier.wait(ready_c.index(s), ph)
            fence_async_shared()   # the cp.async rows were written through the generic proxy; wgmma reads async
            acc = warpgroup_mma(a_smem.index(s).permute((1, 0)), b_smem.index(2 * s + H), acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
            if j > 0:
                mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            it += 1
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
        if n_steps > 0:
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
        rows = pm * BLOCK_M + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, mma_layout))
        cols = pn * 2 * HALF_N + H * HALF_N + gl.arange(0, HALF_N, layout=gl.SliceLayout(0, mma_layout))
        ptrs = C + e.to(gl.int64) * stride_ce + rows[:, None].to(gl.int64) * stride_cm + cols[None, :]
        gl.store(ptrs, acc.to(C.dtype.element_ty), mask=(rows < M)[:, None] & (cols < N)[None, :])


@gluon.jit
def _ws_consumer0(a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n):
    _ws_consume(a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n, 0)


@gluon.jit
def _ws_consumer1(a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n):
    _ws_consume(a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n, 1)


@gluon.jit
def _ws_producer_a(desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
                   n_tiles, num_m, num_n):
    _ws_produce(desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
                n_tiles, num_m, num_n, True)


@gluon.jit
def _ws_producer_b(desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
                   n_tiles, num_m, num_n):
    _ws_produce(desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
                n_tiles, num_m, num_n, False)


@gluon.jit
def _wgrad_ws_kernel(Am, B, C, gather, offsets, M, N, RA, RB, stride_ar, stride_br, stride_ce, stride_cm, E,
                     GATHER_A: gl.constexpr, BLOCK_M: gl.constexpr, HALF_N: gl.constexpr, BLOCK_K: gl.constexpr,
                     STAGES: gl.constexpr, CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = Am.dtype.element_ty
    a_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK_M], dt)
    b_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, HALF_N], dt)
    a_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, BLOCK_M], a_layout)
    b_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, HALF_N], b_layout)
    ready_t = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    ready_c = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(STAGES):
        mbarrier.init(ready_t.index(s), count=1)
        mbarrier.init(ready_c.index(s), count=PRODUCER_WARPS * 32)
        mbarrier.init(empty.index(s), count=2)
    if GATHER_A:
        desc = tma.make_tensor_descriptor(B, shape=[RB, N], strides=[stride_br, 1], block_shape=[BLOCK_K, HALF_N],
                                          layout=b_layout)
    else:
        desc = tma.make_tensor_descriptor(Am, shape=[RA, M], strides=[stride_ar, 1], block_shape=[BLOCK_K, BLOCK_M],
                                          layout=a_layout)
    num_m = (M + BLOCK_M - 1) // BLOCK_M
    num_n = (N + 2 * HALF_N - 1) // (2 * HALF_N)
    n_tiles = E * num_m * num_n
    cargs = (a_smem, b_smem, ready_t, ready_c, empty, C, offsets, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n)
    pargs = (desc, a_smem, b_smem, ready_t, ready_c, empty, Am, B, gather, offsets, M, N, stride_ar, stride_br,
             n_tiles, num_m, num_n)
    if GATHER_A:
        gl.warp_specialize([(_ws_consumer0, cargs), (_ws_consumer1, cargs), (_ws_producer_a, pargs)],
                           [4, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_ws_consumer0, cargs), (_ws_consumer1, cargs), (_ws_producer_b, pargs)],
                           [4, PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])


def wgrad_ws(a, b, gather_idx, offsets, gather_a, out_dtype=None, n_prog=None, BLOCK_K=64, STAGES=4,
             consumer_regs=232, producer_regs=40):
    E = offsets.numel() - 1
    M, N = a.shape[1], b.shape[1]
    c = torch.empty(E, M, N, device=a.device, dtype=out_dtype or a.dtype)
    n_tiles = E * triton.cdiv(M, 128) * triton.cdiv(N, 256)
    n_prog = n_prog or min(n_tiles, torch.cuda.get_device_properties(a.device).multi_processor_count)
    _wgrad_ws_kernel[(n_prog,)](a, b, c, gather_idx, offsets, M, N, a.shape[0], b.shape[0], a.stride(0), b.stride(0),
                                c.stride(0), c.stride(1), E, GATHER_A=gather_a, BLOCK_M=128, HALF_N=128,
                                BLOCK_K=BLOCK_K, STAGES=STAGES, CONSUMER_REGS=consumer_regs,
                                PRODUCER_REGS=producer_regs, num_warps=4)
    return c
