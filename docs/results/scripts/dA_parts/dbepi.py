"""dA' (_down_bwd_hopper_kernel): variants of its epilogue warpgroup, which bounds the kernel at 1.4B
(.gpu/dbparts.py: 593 us as it is, 340 with an epilogue that does nothing). The producer and the two
consumers are dbparts.py's (imported, at their load/MMA settings: the repo's code); only the epilogue
and the register/ring configuration change. Each variant is checked against the repo kernel
(sk.down_bwd, HOPPER_DOWN_BWD forced) and timed as in dbparts.py: median of 20 CUDA-event timings
after 3 warm-ups, 2 alternated rounds.
    python .gpu/dbepi.py                   # on the H200: every variant at both shapes
    python .gpu/dbepi.py --only a,b,r      # a subset (a, the reference, always)
    python .gpu/dbepi.py --shapes 1        # the first shape only
    python .gpu/dbepi.py --compile-only    # CPU: compile every variant for sm_90, print regs/spills/smem
Each variant runs once (compiled, checked) before any timing, with a line before and after; every shape
has its own faulthandler guard (SHAPE_GUARD_S) that ends the process, the last "launching" line naming
the variant that hung.
Variants (SIG: how sigmoid(g) is computed; all else as in the repo unless said):
  a   repo    sk.down_bwd
  b   copy    the copy, sig = 1/(1+gl.exp(-g)) as in the repo. Not an IEEE division: Triton's fp32 '/'
              is div.full.f32 (~5 SASS ops with its range fix-up, 1 MUFU.RCP), gl.exp ex2.approx.f32 without
              ftz (~6 with its denormal fix-up, 1 MUFU.EX2): must be bit-identical to a
  r   rcp     sig = rcp.approx.ftz.f32(1 + gl.exp(-g)) (inline asm): 1 MUFU.RCP for the division
  rx  rcpex2  sig = rcp.approx.ftz(1 + ex2.approx.ftz(-g log2 e)) in one inline asm: 2 MUFU + FMUL + FADD
  t   tanh    sig = 0.5 + 0.5 tanh.approx.f32(0.5 g) (inline asm): 1 MUFU.TANH + FMUL + FFMA
  c2  chunk32 CHUNK=32, NBUF=2 (ring 32 KB as before: NBUF=3 would need 240 KB), registers C2_REGS
              (consumers 120, epilogue 208, producer 64: epilogue 184, 192, 200 spill)
  r2  rcp+c2  r's sigmoid with c2's configuration
  x2  2 epis  two epilogue warpgroups: rows 0-63 (consumer 0's) and 64-127 (consumer 1's) of every item,
              each with half of the h ring (NBUF/2 chunks), both waiting epi_ready, epi_empty counting 2;
              registers X2_REGS (20 warps: 480 registers a thread-slot in all, not 512)
"""
import faulthandler
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbparts as dp   # puts the repo on sys.path and imports sonic_kernels
import torch
import triton
import sonic_kernels as sk
from sonic_kernels import gl, gluon, mbarrier, gl_async_copy, gl_tma, _cp_async, _cta_barrier, _ws_ring, _ws_items, \
    _db_item, WG_PRODUCER_WARPS, BLOCK_M
from dbparts import _xc0, _xc1, _xp_load, timed, SHAPES, PTX_OPS

# setmaxnreg: Triton gives the default partition (consumer 0 here) what is left of 64K registers after
# the workers' requests (AllocateWarpGroups: 16 warps, 128 a thread, so 512 - C - E - P a thread-slot;
# 20 warps: 96 a thread, 480 - C - 2E - P), and emits no setmaxnreg at all when that is under 24
# CHUNK=32 (32 elements a thread a step, 16 before): with the repo's sigmoid the epilogue spills at
# 184 (104 B of spill stores), 192 (108 B), 200 (20 B) and is clean from 208 (ptxas 12.x of Triton 3.6, sm_90a); r's
# sigmoid is clean at 192. c2 and r2 take one split, the first clean one
C2_REGS = dict(CONSUMER_REGS=120, EPILOGUE_REGS=208, PRODUCER_REGS=64)     # default 512-120-208-64 = 120
X2_REGS = dict(CONSUMER_REGS=120, EPILOGUE_REGS=96, PRODUCER_REGS=48)      # default 480-120-192-48 = 120
C2_CFG = dict(CHUNK=32, NBUF=2, **C2_REGS)
# key: (name, SIG, NEPI, config over sk.DB_CONFIG)
VARIANTS = {"a": ("repo", None, None, {}), "b": ("copy", 0, 1, {}), "r": ("rcp", 1, 1, {}),
            "rx": ("rcpex2", 3, 1, {}), "t": ("tanh", 2, 1, {}), "c2": ("chunk32", 0, 1, C2_CFG),
            "r2": ("rcp+c2", 1, 1, C2_CFG), "x2": ("2 epis", 0, 2, X2_REGS)}


# ----------------------------------------------------------------------------- the epilogue
@gluon.jit
def _sigmoid(g, SIG: gl.constexpr):
    if SIG == 0:
        sig = 1.0 / (1.0 + gl.exp(-g))   # as the repo: div.full.f32 of ex2.approx.f32
    elif SIG == 1:
        sig = gl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=r,r", [1.0 + gl.exp(-g)],
                                        dtype=gl.float32, is_pure=True, pack=1)
    elif SIG == 2:
        t = gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=r,r", [0.5 * g],
                                      dtype=gl.float32, is_pure=True, pack=1)
        sig = 0.5 + 0.5 * t
    else:
        # 0fBFB8AA3B = -log2(e)
        sig = gl.inline_asm_elementwise(
            "{ .reg .f32 t; mul.f32 t, $1, 0fBFB8AA3B; ex2.approx.ftz.f32 t, t; add.f32 t, t, 0f3F800000; "
            "rcp.approx.ftz.f32 $0, t; }", "=r,r", [g], dtype=gl.float32, is_pure=True, pack=1)
    return sig


@gluon.jit
def _y_issue_h(h_smem, b: gl.constexpr, H, rows, row_end, cols, mcol, N, stride_hr):
    # sk._db_issue_h (b: the slot pair's index in the whole ring)
    mask = (rows < row_end)[:, None] & mcol
    hp = H + rows.to(gl.int64)[:, None] * stride_hr + cols[None, :]
    _cp_async(h_smem.index(2 * b), hp, mask=mask)
    _cp_async(h_smem.index(2 * b + 1), hp + N, mask=mask)


@gluon.jit
def _y_epilogue(e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
                N, R, stride_hr, stride_ar, num_n, n_items, SIG: gl.constexpr, NEPI: gl.constexpr,
                EIDX: gl.constexpr):
    # sk._db_epilogue over chunks EIDX * NQ .. (EIDX + 1) * NQ - 1 of the item (NQ = all chunks / NEPI),
    # with ring slots EIDX * NB .. (EIDX + 1) * NB - 1 (NB = NBUF / NEPI) and sigmoid by SIG
    HALF: gl.constexpr = e_smem.type.shape[1]
    BLOCK_N: gl.constexpr = e_smem.type.shape[2]
    CHUNK: gl.constexpr = h_smem.type.shape[1]
    NB: gl.constexpr = h_smem.type.shape[0] // 2 // NEPI
    PER_HALF: gl.constexpr = HALF // CHUNK
    NQ: gl.constexpr = 2 * PER_HALF // NEPI
    Q0: gl.constexpr = EIDX * NQ
    B0: gl.constexpr = EIDX * NB
    epi: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
    rs = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, epi))
    cs = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, epi))
    ti = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
        cols = pn * BLOCK_N + cs
        mcol = (cols < N)[None, :]
        for q in gl.static_range(NB - 1):
            _y_issue_h(h_smem, B0 + q, H, row0 + (Q0 + q) * CHUNK + rs, row_end, cols, mcol, N, stride_hr)
            gl_async_copy.commit_group()
        mbarrier.wait(epi_ready, ti & 1)
        for q in gl.static_range(NQ):
            if q + NB - 1 < NQ:
                _y_issue_h(h_smem, B0 + (q + NB - 1) % NB, H, row0 + (Q0 + q + NB - 1) * CHUNK + rs, row_end,
                           cols, mcol, N, stride_hr)
            gl_async_copy.commit_group()
            gl_async_copy.wait_group(NB - 1)
            rows = row0 + (Q0 + q) * CHUNK + rs
            mrow = rows < row_end
            mask = mrow[:, None] & mcol
            rows64 = rows.to(gl.int64)
            da_raw = e_smem.index((Q0 + q) // PER_HALF).slice(((Q0 + q) % PER_HALF) * CHUNK, CHUNK, dim=0).load(epi)
            g = h_smem.index(2 * (B0 + q % NB)).load(epi).to(gl.float32)
            u = h_smem.index(2 * (B0 + q % NB) + 1).load(epi).to(gl.float32)
            sc = gl.load(S + rows64, mask=mrow, other=0.0)
            sig = _sigmoid(g, SIG)
            silu = g * sig
            a = silu * u
            da = da_raw * sc[:, None]
            dp = dH + rows64[:, None] * stride_hr + cols[None, :]
            gl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], (a * sc[:, None]).to(Ap.dtype.element_ty),
                     mask=mask)
            gl.store(dp, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask)
            gl.store(dp + N, (da * silu).to(dH.dtype.element_ty), mask=mask)
            gl.store(dS_part + pn.to(gl.int64) * R + rows64, gl.sum(da_raw * a, axis=1), mask=mrow)
        _cta_barrier()
        mbarrier.arrive(epi_empty, count=1)
        ti += 1


# one wrapper per (SIG, NEPI, EIDX): warp_specialize's partitions take no constexpr arguments
@gluon.jit
def _ye_s0(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 0, 1, 0)


@gluon.jit
def _ye_s1(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 1, 1, 0)


@gluon.jit
def _ye_s2(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 2, 1, 0)


@gluon.jit
def _ye_s3(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 3, 1, 0)


@gluon.jit
def _ye_x0(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 0, 2, 0)


@gluon.jit
def _ye_x1(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items):
    _y_epilogue(es, hs, er, ee, H, S, dH, Ap, dSp, te, tr, offsets, N, R, shr, sar, num_n, n_items, 0, 2, 1)


# ----------------------------------------------------------------------------- the kernel
@gluon.jit
def _dbe_kernel(dO, W2, H, S, gather, tile_expert, tile_row0, offsets, dH, Ap, dS_part,
                N, D, E, R, stride_ot, stride_hr, stride_ar,
                BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
                NB: gl.constexpr, CHUNK: gl.constexpr, NBUF: gl.constexpr, CONSUMER_REGS: gl.constexpr,
                EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr, SIG: gl.constexpr, NEPI: gl.constexpr):
    # sk._down_bwd_hopper_kernel with the epilogue chosen by SIG and NEPI (1 or 2 epilogue warpgroups)
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
    mbarrier.init(epi_empty, count=NEPI)   # each epilogue warpgroup arrives once an item
    w_desc = gl_tma.make_tensor_descriptor(W2, shape=[E * N, D], strides=[D, 1], block_shape=[BLOCK_N, BLOCK_K],
                                           layout=w_layout)
    num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
    cargs = (g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,
             offsets, D, num_n, n_items)
    eargs = (e_smem, h_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
             N, R, stride_hr, stride_ar, num_n, n_items)
    pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
             N, D, stride_ot, num_n, n_items)
    if NEPI == 2:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_ye_x0, eargs), (_ye_x1, eargs), (_xp_load, pargs)],
                           [4, 4, 4, WG_PRODUCER_WARPS],
                           [CONSUMER_REGS, EPILOGUE_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif SIG == 0:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_ye_s0, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif SIG == 1:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_ye_s1, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    elif SIG == 2:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_ye_s2, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_xc0, cargs), (_xc1, cargs), (_ye_s3, eargs), (_xp_load, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])


def variant_config(key):
    name, SIG, NEPI, cfg = VARIANTS[key]
    return dict(sk.DB_CONFIG, **cfg, SIG=SIG, NEPI=NEPI)


def db_variant(dout, w2, h, r, key):
    """sk.down_bwd's Hopper path (the same allocations, zeros and dS sum) with variant key's kernel."""
    R, (E, n, d) = h.shape[0], w2.shape
    dH = torch.empty(R, 2 * n, device=h.device, dtype=h.dtype)
    Ap = torch.empty(R, n, device=h.device, dtype=h.dtype)
    bn = sk.DB_CONFIG["BLOCK_N"]
    dS_part = torch.zeros(triton.cdiv(n, bn), R, device=h.device, dtype=torch.float32)
    sk._set_allocator()
    items = r.tile_expert.numel() * triton.cdiv(n, bn)
    _dbe_kernel[(sk._n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part,
        n, d, E, R, dout.stride(0), h.stride(0), Ap.stride(0), BLOCK_M=BLOCK_M, NB=triton.next_power_of_2(E),
        num_warps=4, **variant_config(key))
    return dH, Ap, dS_part.sum(0)


SHAPE_GUARD_S = {"1.4B 256/128/8": 100, "7B 256/128/8": 60}   # the first shape's includes every compile


# ----------------------------------------------------------------------------- compile-only (CPU)
def ptxas_spills(ptx):
    """ptxas -v on the ptx (Triton's ptxas for sm_90, sm_90a): (spill store bytes, spill load bytes, SASS
    instructions, MUFU among them) of the whole kernel."""
    from triton.backends.nvidia.compiler import get_ptxas
    ptxas = get_ptxas(90).path   # the one Triton used: 3.6 its ptxas, 3.9 ptxas-blackwell
    cuobjdump = Path(triton.__file__).parent / 'backends' / 'nvidia' / 'bin' / 'cuobjdump'
    with tempfile.TemporaryDirectory() as tmp:
        p, c = Path(tmp) / 'k.ptx', Path(tmp) / 'k.cubin'
        p.write_text(ptx)
        out = subprocess.run([str(ptxas), '-arch=sm_90a', '-v', str(p), '-o', str(c)], capture_output=True, text=True)
        sass = subprocess.run([str(cuobjdump), '-sass', str(c)], capture_output=True, text=True).stdout if c.exists() else ""
    m = re.search(r'(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads', out.stderr)
    if not m:
        print(f"ptxas -v: {out.stderr.strip()[-300:]}")
    n_ins = len(re.findall(r"^\s+/\*[0-9a-f]{4,}\*/\s+\S", sass, flags=re.M))
    n_mufu = len(re.findall(r"\bMUFU\.", sass))
    return (int(m.group(2)), int(m.group(3))) if m else (-1, -1), n_ins, n_mufu


PTX_OPS_E = dict(PTX_OPS, **{"rcp.ftz": r"rcp\.approx\.ftz", "tanh": r"tanh\.approx", "div.full": r"div\.full\.f32"})
PTX_OPS_E.pop("tma", None)
PTX_OPS_E.pop("cp.mbar.arr", None)


def compile_only():
    T, d, n, E, K = SHAPES["1.4B 256/128/8"]
    R = T * K
    base = dict(dO='*bf16', W2='*bf16', H='*bf16', S='*fp32', gather='*i32', tile_expert='*i32', tile_row0='*i32',
                offsets='*i32', dH='*bf16', Ap='*bf16', dS_part='*fp32', N=n, D=d, E=E, R=R, stride_ot=d,
                stride_hr=2 * n, stride_ar=n, BLOCK_M=BLOCK_M, NB=triton.next_power_of_2(E))
    from triton.backends.nvidia.compiler import get_ptxas
    ver = re.search(r"release ([\d.]+)", subprocess.run([get_ptxas(90).path, "--version"], capture_output=True,
                                                          text=True).stdout)
    print(f"triton {triton.__version__} (ptxas {ver.group(1) if ver else '?'}); sm_90, bf16, 1.4B T={T} d={d} n={n} E={E} K={K} (the same code at 7B); "
          f"repo {' '.join(f'{k}={v}' for k, v in sk.DB_CONFIG.items())}")
    print("spill: ptxas -v spill store/load bytes (whole kernel); regs, stack: cuobjdump; SASS: instructions in "
          "the kernel (static), MUFU among them; ptx counts static")
    print(f"{'variant':<12}{'regs':>5}{'stack':>6}{'spill st/ld':>12}{'smem KiB':>9}  {'CHUNK NBUF C/E/P':<18}"
          f"{'setmaxnreg':<50}{'SASS':>6}{'MUFU':>5}" + "".join(f"{k:>10}" for k in PTX_OPS_E))
    keys = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else list(VARIANTS)
    ok = True
    for key in keys:
        name = VARIANTS[key][0]
        try:
            if VARIANTS[key][1] is None:
                cfg = dict(sk.DB_CONFIG)
                regs, stack, smem, ptx = dp.compile_sm90(sk._down_bwd_hopper_kernel, dict(base, **cfg))
            else:
                cfg = variant_config(key)
                regs, stack, smem, ptx = dp.compile_sm90(_dbe_kernel, dict(base, **cfg))
        except Exception as ex:
            ok = False
            print(f"{key:<3}{name:<9} error {type(ex).__name__}: {str(ex).strip()[-1500:]}", flush=True)
            continue
        (sst, sld), n_ins, n_mufu = ptxas_spills(ptx)
        nreg = ",".join(f"{a[0]}{b}" for a, b in re.findall(r"setmaxnreg\.(inc|dec)\.sync\.aligned\.u32\s+(\d+)", ptx))
        counts = "".join(f"{len(re.findall(p, ptx)):>10}" for p in PTX_OPS_E.values())
        conf = f"{cfg['CHUNK']} {cfg['NBUF']} {cfg['CONSUMER_REGS']}/{cfg['EPILOGUE_REGS']}/{cfg['PRODUCER_REGS']}"
        bad = sst != 0 or sld != 0 or smem > 227 * 1024 or "setmaxnreg" not in ptx   # stack without spills: noted
        ok &= not bad
        print(f"{key:<3}{name:<9}{regs:>5}{stack:>6}{f'{sst}/{sld}':>12}{smem / 1024:>9.1f}  {conf:<18}{nreg:<50}"
              f"{n_ins:>6}{n_mufu:>5}{counts}{'  <-- SPILLS / SMEM / NO SETMAXNREG' if bad else '  (stack, no spills)' if stack else ''}", flush=True)
    print("all variants compiled without spills" if ok else "SOME VARIANTS FAILED OR SPILL")
    return ok


# ----------------------------------------------------------------------------- checks (H200)
def errors(out, ref):
    """dH, A' (bf16): elements that differ, the most bf16 ulps (of the reference) any differs by, the
    largest elementwise relative error (|ref| > 1e-30) and max|diff| / max|ref|; dS (fp32) likewise."""
    parts = []
    for nm, x, y in zip(("dH", "A'", "dS"), out, ref):
        x, y = x.float(), y.float()
        diff = (x - y).abs()
        nz = y.abs() > 1e-30
        rel = (diff[nz] / y[nz].abs()).max().item() if nz.any() else 0.0
        nd = int((x != y).sum())
        s = f"{nm}: {nd}/{x.numel()} differ, max rel {rel:.2e}, normwise {diff.max().item() / y.abs().max().item():.2e}"
        if nm != "dS":
            ulp = torch.exp2(torch.floor(torch.log2(y.abs().clamp_min(1e-30))) - 7)
            s += f", max {(diff / ulp)[nz].max().item() if nz.any() else 0:.0f} ulp"
        parts.append(s)
    return "; ".join(parts)


def main():
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else list(VARIANTS)
    n_shapes = int(sys.argv[sys.argv.index("--shapes") + 1]) if "--shapes" in sys.argv else len(SHAPES)
    keys = ["a"] + [k for k in VARIANTS if k in only and k != "a"]
    sk.HOPPER_DOWN_BWD = True
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__}; repo "
          f"{' '.join(f'{k}={v}' for k, v in sk.DB_CONFIG.items())}; c2 {C2_CFG}; x2 {X2_REGS}", flush=True)
    torch.manual_seed(0)
    for name, (T, d, n, E, K) in list(SHAPES.items())[:n_shapes]:
        faulthandler.dump_traceback_later(SHAPE_GUARD_S[name], exit=True)   # this shape's guard
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
        fns = {k: (lambda: sk.down_bwd(dout, w2, h, r)) if k == "a" else (lambda k=k: db_variant(dout, w2, h, r, k))
               for k in keys}
        ref = sk.down_bwd(dout, w2, h, r)
        torch.cuda.synchronize()
        for k, fn in fns.items():
            print(f"  {name} {k} {VARIANTS[k][0]}: launching", flush=True)
            out = fn()
            torch.cuda.synchronize()
            same = [torch.equal(p, q) for p, q in zip(out, ref)]
            extra = f", bit-identical to a: dH {same[0]} A' {same[1]} dS {same[2]}"
            if not all(same):
                extra += f"\n    {name} {k} errors against a: {errors(out, ref)}"
            print(f"  {name} {k} {VARIANTS[k][0]}: ran{extra}", flush=True)
            if k == "b":
                assert all(same), f"{name}: the copy differs from the repo kernel"
            del out
        res = {k: [] for k in fns}
        for rnd in range(2):
            for k, fn in fns.items():
                res[k].append(timed(fn))
        ta = min(res["a"])
        for k, ts in res.items():
            t = min(ts)
            print(f"{name} {k:<3}{VARIANTS[k][0]:<9} {'/'.join(f'{u * 1e3:.1f}' for u in ts)} us (rounds)  "
                  f"{t / ta:.3f} of a  {t * 1e3 * progs / items:.2f} us/item/program", flush=True)
        print(f"{name}: R={R} items={items} programs={progs}", flush=True)
        faulthandler.cancel_dump_traceback_later()
        del x, w1, w2, dout, h, ref, r, fns
        torch.cuda.empty_cache()


if __name__ == "__main__":
    if "--compile-only" in sys.argv:
        sys.exit(0 if compile_only() else 1)
    main()
