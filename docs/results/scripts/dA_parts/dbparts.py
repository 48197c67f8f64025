"""Where dA' (_down_bwd_hopper_kernel) spends its time: the kernel as in the repo against a copy with
constexpr switches that each take one part out while every barrier hand-over stays as it is, at
1.4B and 7B (256/128/8). Median of 20 CUDA-event timings after 3 warm-ups, 2 alternated rounds.
    python .gpu/dbparts.py                   # on the H200: time every variant at both shapes
    python .gpu/dbparts.py --only a,b,e      # a subset (after a hang, leave the variant out)
    python .gpu/dbparts.py --shapes 1        # the first shape only
    python .gpu/dbparts.py --compile-only    # CPU: compile every variant for sm_90, print regs/spills/smem
Each variant runs once (compiled, checked) before any timing, least risky first, with a line before and
after; one that has not finished in GUARD_S seconds ends the process (faulthandler) with its name printed.
Variants, least risky first (the order they run in):
  a  repo       sk.down_bwd (HOPPER_DOWN_BWD forced on)
  b  copy       the copy below, every switch off: must be bit-identical to a
  e  STORE_SKIP epilogue computes everything (h, math, dS's row sums, the bf16 casts) but stores none of it: the
                bf16 outputs are added (as fp32) into dS's row sum, the row sums into a register sink, and one float
                is stored per program at the end (no address math for the stores either)
  f  H_SKIP     epilogue issues no cp.async of h and reads no h from shared memory: g = u = dA' (a register
                value, so the math is not constant-folded), then the math and every store as in b
  c  EPI_SKIP   epilogue only waits epi_ready, thread-barriers and arrives epi_empty: producer + MMAs alone
  d  MMA_SKIP   consumers wait ready_t/ready_c, fence, arrive empty (same lagged order) but issue no wgmma; they
                still wait epi_empty, store the (zero) accumulator, barrier, arrive epi_ready: loads + epilogue
  g  LOAD_SKIP  producer waits empty, then mbarrier.arrive(ready_t) in place of expect + TMA, and no cp.async of
                dO before its cp.async.mbarrier.arrive.noinc on ready_c (which then completes at once)
"""
import faulthandler
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import torch
import triton
import sonic_kernels as sk
from sonic_kernels import (gl, gluon, mbarrier, gl_async_copy, gl_tma, fence_async_shared, warpgroup_mma,
                           warpgroup_mma_wait, _cp_async, _tma_load, _cta_barrier, _ws_ring, _ws_items, _db_item,
                           _db_issue_h, WG_PRODUCER_WARPS, BLOCK_M)

# V (the copy's switch): 0 all off, 1 EPI_SKIP, 2 MMA_SKIP, 3 STORE_SKIP, 4 H_SKIP, 5 LOAD_SKIP
VARIANTS = {"a": ("repo", None), "b": ("copy", 0), "e": ("STORE_SKIP", 3), "f": ("H_SKIP", 4),
            "c": ("EPI_SKIP", 1), "d": ("MMA_SKIP", 2), "g": ("LOAD_SKIP", 5)}


# ----------------------------------------------------------------------------- the producer
@gluon.jit
def _x_produce(w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
               N, D, stride_ot, num_n, n_items, DO_LOAD: gl.constexpr):
    # sk._db_produce; DO_LOAD False: no TMA and no cp.async, every barrier as before
    STAGES: gl.constexpr = w_smem.type.shape[0]
    BLOCK_N: gl.constexpr = w_smem.type.shape[1]
    BLOCK_K: gl.constexpr = w_smem.type.shape[2]
    HALF: gl.constexpr = g_smem.type.shape[1]
    layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [WG_PRODUCER_WARPS, 1], [1, 0])
    ms = gl.arange(0, HALF, layout=gl.SliceLayout(1, layout))
    ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(0, layout))
    it = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
        m0 = row0 + ms < row_end
        m1 = row0 + HALF + ms < row_end
        o0 = dO + gl.load(gather + row0 + ms, mask=m0, other=0).to(gl.int64)[:, None] * stride_ot
        o1 = dO + gl.load(gather + row0 + HALF + ms, mask=m1, other=0).to(gl.int64)[:, None] * stride_ot
        w_row = e * N + pn * BLOCK_N
        for k0 in range(0, D, BLOCK_K):
            s = it % STAGES
            mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)
            if DO_LOAD:
                mbarrier.expect(ready_t.index(s), BLOCK_N * BLOCK_K * w_smem.type.element_ty.primitive_bitwidth // 8)
                _tma_load(w_desc, [w_row, k0], ready_t.index(s), w_smem.index(s))
                kk = k0 + ks
                mk = (kk < D)[None, :]
                _cp_async(g_smem.index(2 * s), o0 + kk[None, :], mask=m0[:, None] & mk)
                _cp_async(g_smem.index(2 * s + 1), o1 + kk[None, :], mask=m1[:, None] & mk)
            else:
                mbarrier.arrive(ready_t.index(s), count=1)   # ready_t's one arrival, no bytes expected
            # each producer thread's arrival (count 128) once its cp.async copies are done: at once without them
            gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
            it += 1


@gluon.jit
def _xp_load(w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
             N, D, stride_ot, num_n, n_items):
    _x_produce(w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
               N, D, stride_ot, num_n, n_items, True)


@gluon.jit
def _xp_noload(w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
               N, D, stride_ot, num_n, n_items):
    _x_produce(w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
               N, D, stride_ot, num_n, n_items, False)


# ----------------------------------------------------------------------------- the consumers
@gluon.jit
def _x_consume(g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,
               offsets, D, num_n, n_items, HH: gl.constexpr, DO_MMA: gl.constexpr):
    # sk._db_consume; DO_MMA False: no wgmma (acc stays zeros), every barrier as before
    STAGES: gl.constexpr = w_smem.type.shape[0]
    BLOCK_N: gl.constexpr = w_smem.type.shape[1]
    BLOCK_K: gl.constexpr = w_smem.type.shape[2]
    HALF: gl.constexpr = g_smem.type.shape[1]
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 16])
    acc_smem = e_smem.index(HH)
    n_k = (D + BLOCK_K - 1) // BLOCK_K
    it = 0
    ti = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        acc = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
        for j in range(0, n_k):
            s = it % STAGES
            mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
            mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
            fence_async_shared()
            if DO_MMA:
                acc = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(s).permute((1, 0)), acc, is_async=True)
                acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
            if j > 0:
                mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            it += 1
        if DO_MMA:
            acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
        mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
        mbarrier.wait(epi_empty, (ti & 1) ^ 1)
        acc_smem.store(acc)
        _cta_barrier()
        mbarrier.arrive(epi_ready, count=1)
        ti += 1


@gluon.jit
def _xc0(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
    _x_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 0, True)


@gluon.jit
def _xc1(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
    _x_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 1, True)


@gluon.jit
def _xc0_nomma(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
    _x_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 0, False)


@gluon.jit
def _xc1_nomma(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
    _x_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 1, False)


# ----------------------------------------------------------------------------- the epilogue
@gluon.jit
def _x_epilogue(e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, Sink, tile_expert, tile_row0, offsets,
                N, R, stride_hr, stride_ar, num_n, n_items, MODE: gl.constexpr):
    # sk._db_epilogue. MODE 0: as it is; 1 (EPI_SKIP): only the hand-over; 3 (STORE_SKIP): no global
    # stores, the values summed into registers and one float stored per program; 4 (H_SKIP): no h
    HALF: gl.constexpr = e_smem.type.shape[1]
    BLOCK_N: gl.constexpr = e_smem.type.shape[2]
    CHUNK: gl.constexpr = h_smem.type.shape[1]
    NBUF: gl.constexpr = h_smem.type.shape[0] // 2
    PER_HALF: gl.constexpr = HALF // CHUNK
    epi: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
    rs = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, epi))
    cs = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, epi))
    sink_r = gl.zeros([CHUNK], gl.float32, gl.SliceLayout(1, epi))   # MODE 3 only (dead code otherwise)
    ti = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        if MODE == 1:
            mbarrier.wait(epi_ready, ti & 1)
        else:
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            cols = pn * BLOCK_N + cs
            mcol = (cols < N)[None, :]
            if MODE != 4:
                for q in gl.static_range(NBUF - 1):
                    _db_issue_h(h_smem, q, H, row0 + q * CHUNK + rs, row_end, cols, mcol, N, stride_hr)
                    gl_async_copy.commit_group()
            mbarrier.wait(epi_ready, ti & 1)
            for q in gl.static_range(2 * PER_HALF):
                if MODE != 4:
                    if q + NBUF - 1 < 2 * PER_HALF:
                        _db_issue_h(h_smem, (q + NBUF - 1) % NBUF, H, row0 + (q + NBUF - 1) * CHUNK + rs, row_end,
                                    cols, mcol, N, stride_hr)
                    gl_async_copy.commit_group()
                    gl_async_copy.wait_group(NBUF - 1)
                rows = row0 + q * CHUNK + rs
                mrow = rows < row_end
                mask = mrow[:, None] & mcol
                rows64 = rows.to(gl.int64)
                da_raw = e_smem.index(q // PER_HALF).slice((q % PER_HALF) * CHUNK, CHUNK, dim=0).load(epi)
                if MODE == 4:
                    g = da_raw   # not constants: those would fold the math away
                    u = da_raw
                else:
                    g = h_smem.index(2 * (q % NBUF)).load(epi).to(gl.float32)
                    u = h_smem.index(2 * (q % NBUF) + 1).load(epi).to(gl.float32)
                sc = gl.load(S + rows64, mask=mrow, other=0.0)
                sig = 1.0 / (1.0 + gl.exp(-g))
                silu = g * sig
                a = silu * u
                da = da_raw * sc[:, None]
                ap = (a * sc[:, None]).to(Ap.dtype.element_ty)
                dg = (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty)
                du = (da * silu).to(dH.dtype.element_ty)
                if MODE == 3:
                    # the stored values ride in dS's row sum (its reduction as it is, 3 adds an element more)
                    # and only that goes on: a [CHUNK, BLOCK_N] register sink spilled (24 bytes)
                    ds = gl.sum(da_raw * a + ((ap.to(gl.float32) + dg.to(gl.float32)) + du.to(gl.float32)), axis=1)
                    sink_r += ds
                else:
                    ds = gl.sum(da_raw * a, axis=1)
                    dp = dH + rows64[:, None] * stride_hr + cols[None, :]
                    gl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], ap, mask=mask)
                    gl.store(dp, dg, mask=mask)
                    gl.store(dp + N, du, mask=mask)
                    gl.store(dS_part + pn.to(gl.int64) * R + rows64, ds, mask=mrow)
        _cta_barrier()
        mbarrier.arrive(epi_empty, count=1)
        ti += 1
    if MODE == 3:
        gl.store(Sink + gl.program_id(0), gl.sum(sink_r, axis=0))


@gluon.jit
def _xe_full(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _x_epilogue(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items, 0)


@gluon.jit
def _xe_skip(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _x_epilogue(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items, 1)


@gluon.jit
def _xe_nostore(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _x_epilogue(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items, 3)


@gluon.jit
def _xe_noh(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _x_epilogue(e_smem, h_smem, er, ee, H, S, dH, Ap, dS_part, Sink, te, tr, offsets, N, R, shr, sar, num_n, n_items, 4)


# ----------------------------------------------------------------------------- the kernel
@gluon.jit
def _dbx_kernel(dO, W2, H, S, gather, tile_expert, tile_row0, offsets, dH, Ap, dS_part, Sink,
                N, D, E, R, stride_ot, stride_hr, stride_ar,
                BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
                NB: gl.constexpr, CHUNK: gl.constexpr, NBUF: gl.constexpr, CONSUMER_REGS: gl.constexpr,
                EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr, V: gl.constexpr):
    # sk._down_bwd_hopper_kernel, with Sink (STORE_SKIP's one float a program) and the switch V
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
    eargs = (e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, Sink, tile_expert, tile_row0, offsets,
             N, R, stride_hr, stride_ar, num_n, n_items)
    pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
             N, D, stride_ot, num_n, n_items)
    # one warp_specialize per variant: the partitions differ only in which wrapper (constexpr switch) runs
    if V == 0:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_xe_full, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif V == 1:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_xe_skip, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif V == 2:
        gl.warp_specialize([(_xc0_nomma, cargs), (_xc1_nomma, cargs), (_xe_full, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif V == 3:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_xe_nostore, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif V == 4:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_xe_noh, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_xe_full, eargs), (_xp_noload, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])


def db_variant(dout, w2, h, r, V, sink):
    """sk.down_bwd's Hopper path (the same allocations, zeros and dS sum) with the copy at switch V."""
    R, (E, n, d) = h.shape[0], w2.shape
    dH = torch.empty(R, 2 * n, device=h.device, dtype=h.dtype)
    Ap = torch.empty(R, n, device=h.device, dtype=h.dtype)
    bn = sk.DB_CONFIG["BLOCK_N"]
    dS_part = torch.zeros(triton.cdiv(n, bn), R, device=h.device, dtype=torch.float32)
    sk._set_allocator()
    items = r.tile_expert.numel() * triton.cdiv(n, bn)
    _dbx_kernel[(sk._n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part, sink,
        n, d, E, R, dout.stride(0), h.stride(0), Ap.stride(0), BLOCK_M=BLOCK_M, NB=triton.next_power_of_2(E),
        V=V, num_warps=4, **sk.DB_CONFIG)
    return dH, Ap, dS_part.sum(0)


GUARD_S = 180   # seconds one variant's first run (its compile included) or its timing may take before exit

SHAPES = {"1.4B 256/128/8": (40960, 768, 256, 128, 8), "7B 256/128/8": (24576, 1536, 256, 128, 8)}


# ----------------------------------------------------------------------------- compile-only (CPU)
def compile_sm90(jit_fn, args):
    """As tests/test_sm90.py's compile_for: one specialisation for sm_90 on this machine (Triton's ptxas
    and cuobjdump); returns (cuobjdump REG, STACK, shared bytes, ptx)."""
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource
    sig, consts, attrs = {}, {}, {}
    for i, p in enumerate(jit_fn.params):
        a, v = p.name, args[p.name]
        if p.is_constexpr:
            sig[a], consts[(i,)] = 'constexpr', v
        elif isinstance(v, str) and v.startswith('*'):
            sig[a], attrs[(i,)] = v, [['tt.divisibility', 16]]
        elif v == 1:
            sig[a], consts[(i,)] = 'constexpr', v
        else:
            sig[a] = 'i32'
            if v % 16 == 0:
                attrs[(i,)] = [['tt.divisibility', 16]]
    src = GluonASTSource(jit_fn, sig, constexprs=consts, attrs=attrs)
    k = triton.compile(src, target=GPUTarget('cuda', 90, 32), options=dict(num_warps=4, num_stages=1))
    cuobjdump = Path(triton.__file__).parent / 'backends' / 'nvidia' / 'bin' / 'cuobjdump'
    with tempfile.NamedTemporaryFile(suffix='.cubin') as f:
        f.write(k.asm['cubin'])
        f.flush()
        res = subprocess.run([str(cuobjdump), '-res-usage', f.name], capture_output=True, text=True).stdout
    m = re.search(r'REG:(\d+) STACK:(\d+)', res)
    return int(m.group(1)), int(m.group(2)), k.metadata.shared, k.asm['ptx']


PTX_OPS = {"wgmma": r"wgmma\.mma_async", "tma": r"cp\.async\.bulk\.tensor", "cp.async": r"cp\.async\.c[ag]\.",
           "st.global": r"\bst\.global", "ld.global": r"\bld\.global", "ex2": r"ex2\.approx",
           "mbar.wait": r"mbarrier\.try_wait", "mbar.arrive": r"(?<!cp\.async\.)mbarrier\.arrive",
           "cp.mbar.arr": r"cp\.async\.mbarrier\.arrive"}


def compile_only():
    T, d, n, E, K = SHAPES["1.4B 256/128/8"]
    R = T * K
    base = dict(dO='*bf16', W2='*bf16', H='*bf16', S='*fp32', gather='*i32', tile_expert='*i32', tile_row0='*i32',
                offsets='*i32', dH='*bf16', Ap='*bf16', dS_part='*fp32', N=n, D=d, E=E, R=R, stride_ot=d,
                stride_hr=2 * n, stride_ar=n, BLOCK_M=BLOCK_M, NB=triton.next_power_of_2(E), **sk.DB_CONFIG)
    print(f"sm_90, bf16, 1.4B T={T} d={d} n={n} E={E} K={K} (the code is the same at 7B: N, D, R are runtime "
          f"integers, all multiples of 16); {' '.join(f'{k}={v}' for k, v in sk.DB_CONFIG.items())}")
    print("ptx counts are static instruction counts (unrolled chunks count each time)")
    print(f"{'variant':<14}{'regs':>5}{'spill B':>8}{'smem KiB':>9}  {'setmaxnreg (partitions)':<62}"
          + "".join(f"{k:>12}" for k in PTX_OPS))
    ok = True
    for key, (name, V) in VARIANTS.items():
        try:
            if V is None:
                regs, stack, smem, ptx = compile_sm90(sk._down_bwd_hopper_kernel, base)
            else:
                regs, stack, smem, ptx = compile_sm90(_dbx_kernel, dict(base, Sink='*fp32', V=V))
        except Exception as ex:
            ok = False
            print(f"{key} {name:<12} error {type(ex).__name__}: {str(ex).strip()[-1500:]}", flush=True)
            continue
        nreg = ",".join(f"{a}{b}" for a, b in re.findall(r"setmaxnreg\.(inc|dec)\.sync\.aligned\.u32\s+(\d+)", ptx))
        counts = "".join(f"{len(re.findall(p, ptx)):>12}" for p in PTX_OPS.values())
        print(f"{key} {name:<12}{regs:>5}{stack:>8}{smem / 1024:>9.1f}  {nreg:<62}{counts}", flush=True)
    print("all variants compiled" if ok else "SOME VARIANTS FAILED")
    return ok


# ----------------------------------------------------------------------------- timing (H200)
def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else list(VARIANTS)
    n_shapes = int(sys.argv[sys.argv.index("--shapes") + 1]) if "--shapes" in sys.argv else len(SHAPES)
    keys = [k for k in VARIANTS if k in only]
    assert "a" in keys, "a (the repo kernel) is the reference"
    sk.HOPPER_DOWN_BWD = True   # the Hopper kernel or an error, never the portable fallback
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__}; "
          f"{' '.join(f'{k}={v}' for k, v in sk.DB_CONFIG.items())}", flush=True)
    torch.manual_seed(0)
    for name, (T, d, n, E, K) in list(SHAPES.items())[:n_shapes]:
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
        num_n = triton.cdiv(n, sk.DB_CONFIG["BLOCK_N"])
        counts = r.offsets[1:].long() - r.offsets[:-1].long()
        items = int(((counts + BLOCK_M - 1) // BLOCK_M).sum()) * num_n
        progs = sk._n_programs(dout.device, r.tile_expert.numel() * num_n)
        sink = torch.zeros(progs, device="cuda", dtype=torch.float32)
        fns = {k: (lambda: sk.down_bwd(dout, w2, h, r)) if V is None else
               (lambda V=V: db_variant(dout, w2, h, r, V, sink)) for k, (vn, V) in VARIANTS.items() if k in keys}
        ref = sk.down_bwd(dout, w2, h, r)
        torch.cuda.synchronize()
        # one run of each, in order, before any timing: a variant that hangs shows as the first not reported
        for k, fn in fns.items():
            print(f"  {name} {k} {VARIANTS[k][0]}: launching", flush=True)
            faulthandler.dump_traceback_later(GUARD_S, exit=True)   # a hang ends the process here, not later
            out = fn()
            torch.cuda.synchronize()
            faulthandler.cancel_dump_traceback_later()
            extra = ""
            if k == "b":
                same = [torch.equal(p, q) for p, q in zip(out, ref)]
                extra = f", bit-identical to a: dH {same[0]} A' {same[1]} dS {same[2]}"
            print(f"  {name} {k} {VARIANTS[k][0]}: ran{extra}", flush=True)
            if k == "b":
                assert all(same), f"{name}: the copy with every switch off differs from the repo kernel"
            del out
        res = {k: [] for k in fns}
        for rnd in range(2):
            for k, fn in fns.items():
                faulthandler.dump_traceback_later(GUARD_S, exit=True)
                res[k].append(timed(fn))
                faulthandler.cancel_dump_traceback_later()
        flops = 2 * R * n * d
        ta = min(res["a"])
        for k, ts in res.items():
            t = min(ts)
            print(f"{name} {k} {VARIANTS[k][0]:<11} {'/'.join(f'{u * 1e3:.1f}' for u in ts)} us (rounds)  "
                  f"{t / ta:.3f} of a  {t * 1e3 * progs / items:.2f} us/item/program  "
                  f"{flops / t / 1e9:.0f} TFLOPS-equiv", flush=True)
        dd = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
        wd = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
        tc = timed(lambda: torch.mm(dd, wd))
        print(f"{name} cuBLAS dense (R,d)@(d,n) {tc * 1e3:.1f} us ({flops / tc / 1e9:.0f} TFLOPS), "
              f"{tc / ta:.3f} of a; R={R} items={items} programs={progs}", flush=True)
        del x, w1, w2, dout, h, ref, r, dd, wd, fns
        torch.cuda.empty_cache()


if __name__ == "__main__":
    if "--compile-only" in sys.argv:
        sys.exit(0 if compile_only() else 1)
    main()
