"""
Every sonic kernel, at every config its autotuner may pick, compiled on a machine with no GPU for
the H100/H200 (sm_90), the A100 (sm_80, whose code sm_86 and sm_89 run too), the B200 (sm_100) and
the RTX 5090 (sm_120): Triton's own ptxas and cuobjdump ship in its wheel. The interpreter, which
the other CPU tests use, never runs the GPU compiler, so without this a config that does not build
(too many registers, too much shared memory), a launch with no config that fits a GPU, a main
loop the pipeliner gave up on, or a GEMM that lost the GPU's asynchronous tensor-core MMA would
show only on the GPU. Nor would ptxas running a kernel's warp-group MMAs one at a time, which it
does, with a note (C7514), when it finds the accumulator's registers read while an MMA may still
write them: it did so under Triton 3.8 to the grouped GEMM, 13-22% slower on the H200 (docs/LOG.md,
2026-12-05); one autotuner candidate of several may be, since the autotuner times it against the
others (the report marks it). The test fails on any of those. Run as a script it prints the report,
registers and spilled bytes included (docs/results/sm90_report.txt is the sm_90 one under Triton 3.6.0, what the
H200 measurements run; sm90_report_triton<version>.txt under the Tritons newer torches pin):
    python tests/test_sm90.py              # sm_90, the 7B layer shape, bf16; about 40 s on 2 cores
    python tests/test_sm90.py --arch 80    # the same for sm_80 (or 100 for sm_100, 120 for sm_120)
    python tests/test_sm90.py --gates      # the Hopper kernels at the odd shapes their gates take
The arguments are specialised as a launch at that shape would be: integers equal to 1 become
constants and multiples of 16 are marked divisible by 16 (contiguity decides whether loads can be
asynchronous copies).
"""
import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import triton
import triton.language as tl

REPO = Path(__file__).resolve().parents[1]
TARGETS = {  # compute capability: (GPU, the most shared memory one program may use, the MMA op every GEMM must use)
    80: ("A100", 163 * 1024, None),                        # mma.sync, the only tensor-core path there
    90: ("H100/H200", 227 * 1024, "ttng.warp_group_dot"),  # warp-group MMA (wgmma)
    100: ("B200", 227 * 1024, "ttng.tc_gen5_mma"),         # tcgen05, accumulating in tensor memory
    120: ("RTX 5090", 99 * 1024, None),                    # mma.sync and TMA; a program gets 99 KB
}
# Where a program gets 99 KB of shared memory (sm_86 and sm_89, which build sm_80's code: A10, A6000, RTX 3090, L4,
# L40S, RTX 4090; and sm_120) configs that need more fail at launch, and the autotuner, which times them as
# infinitely slow, takes one that fits: every launch needs one. On the other targets every config must fit
SMALL_SMEM = 99 * 1024
SHAPE = dict(T=24576, d=1536, n=256, E=128, K=8)  # the 7B paper shape; every size a multiple of 16


@triton.jit
def _fma_probe(X, Y, a, b):
    i = tl.arange(0, 16)
    tl.store(Y + i, tl.load(X + i) * a + b)


def fusion():
    """Whether a * x + b builds as one fused multiply-add for sm_80 once sonic_kernels is imported, and
    Triton's warnings meanwhile: 3.9 warns that 3.10 turns fusion off by default (sonic_kernels keeps it)."""
    import warnings
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        import sonic_kernels  # noqa: F401
        src = ASTSource(_fma_probe, {'X': '*fp32', 'Y': '*fp32', 'a': 'fp32', 'b': 'fp32'})
        ptx = triton.compile(src, target=GPUTarget('cuda', 80, 32)).asm['ptx']
    return 'fma.rn.f32' in ptx, [str(w.message) for w in caught]


try:   # Gluon, for the selftest's kernel that ptxas must serialise
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import warpgroup_mma, warpgroup_mma_wait
except ImportError:
    gluon = None

if gluon is not None:
    @gluon.jit
    def _mma_read_early(Out, n_k, READ: gl.constexpr):
        # with READ, s reads acc while the MMA just issued still writes those registers
        mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, 64, 16])
        layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([64, 64], gl.bfloat16)
        a = gl.allocate_shared_memory(gl.bfloat16, [64, 64], layout)
        b = gl.allocate_shared_memory(gl.bfloat16, [64, 64], layout)
        acc = gl.zeros((64, 64), gl.float32, mma)
        s = gl.zeros((64, 64), gl.float32, mma)
        for k in range(n_k):
            acc = warpgroup_mma(a, b, acc, is_async=True)
            acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
            if READ:
                s += acc
        acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
        rows = gl.arange(0, 64, layout=gl.SliceLayout(1, mma))
        cols = gl.arange(0, 64, layout=gl.SliceLayout(0, mma))
        gl.store(Out + rows[:, None] * 64 + cols[None, :], acc + s)


def launches(tma=False):
    """(name, kernel, {arg: value}) for every launch in sonic_kernels at SHAPE. A value is a dtype
    string for a pointer, an int for an integer argument, or anything else for a constexpr. With tma,
    the expert GEMMs take USE_TMA=True, as sm_90 and newer launch them where TMA pays: their operands
    that are not gathered by TMA descriptors."""
    import sonic_kernels as sk
    import triton
    import triton.language as tl
    T, d, n, E, K = SHAPE.values()
    R = T * K
    bf, i32, f32, i64 = '*bf16', '*i32', '*fp32', '*i64'
    meta = dict(gather_idx=i32, tile_expert=i32, tile_row0=i32, offsets=i32)
    t = dict(USE_TMA=tma)
    router = dict(T=T, E=E, stride_lt=2 * E, PARTS=2, K=K, NORM=True, BLOCK_T=sk._router_block_t(E), BLOCK_E=E)
    return [
        *[(f'router_fwd {r}', sk._router_fwd_kernel, dict(L=f32, BIAS=f32, IDX=i64, G=f32, LSE=f32, SSUM=f32, PSUM=f32,
           CNT=i32, S=f32, CH='*i8', ZP=f32, z_scale=1e-3, n_iter=4, ROUTER=code, ZLOSS=True, SCORES=True, BLOCK_K=K,
           **{**router, 'BLOCK_T': sk._router_block_t(E, sk._router_fwd_tile(E)[0])}),
           [triton.Config({}, num_warps=sk._router_fwd_tile(E)[1], num_stages=3)]) for r, code in sk.ROUTER_CODES.items()],
        ('router_sums', sk._router_sums_kernel, dict(PSUM=f32, CNT=i32, counts=i64, AUX=f32, aux_scale=1e-3,
         n_prog=sk.ROUTER_FWD_PROGRAMS, E=E, BLOCK_P=128, BLOCK_E=sk.SUMS_BLOCK_E)),
        *[(f'router_bwd {r}', sk._router_bwd_kernel, dict(L=f32, LSE=f32, SSUM=f32, IDX=i64, G=f32, DG=f32, DLOSS=f32,
           COUNTS=i64, DL=bf, DL_LO=bf, aux_scale=1e-3, z_scale=1e-3, stride_dt=2 * E, DS=f32, SPLIT=True,
           ROUTER=code, LOSS=True, SCORES=True, **router)) for r, code in sk.ROUTER_CODES.items()],
        ('route_count', sk._route_count_kernel, dict(pair_exp=i64, counts=i32, R=R, n_blk=R // sk.META_BLOCK,
         BLOCK=sk.META_BLOCK, NB=2 * E)),
        *[(f'route_place {name}', sk._route_place_kernel, dict(pair_tok=i64, pair_exp=i64, pair_score=f32,
           counts=i32, ends=i32, gather_idx=i32, rev=i32, row_score=f32, offsets=i32, tile_expert=i32, tile_row0=i32,
           tok_offsets=i32, R=R, T=T, n_blk=R // sk.META_BLOCK, E=E, n_tiles=sk._max_tiles(R, E), BLOCK=sk.META_BLOCK,
           PER_TOK=per_tok, BLOCK_M=sk.BLOCK_M, NB=2 * E, BLOCK_T=32)) for name, per_tok in (('listed', 0), ('top-K', K))],
        ('expert_order', sk._expert_order_kernel, dict(offsets=i32, order=i32, E=E, BLOCK=64)),
        # token rounding, nearest, at the kernels' M tile
        ('round_select', sk._round_select_kernel, dict(P=f32, CH='*i8', F=i64, SEL='*i8', LOAD=i64, T=T, E=E,
         TILE=sk.BLOCK_M, MODE=sk.ROUND_MODES['nearest'], BLOCK_T=sk._round_select_launch(T)[0]),
         [triton.Config({}, num_warps=sk._round_select_launch(T)[1])]),
        ('round_pairs', sk._round_pairs_kernel, dict(SEL='*i8', S=f32, IDX=i64, G=f32, ENDS=i32, PT=i64, PE=i64, PS=f32,
         SRC=i64, T=T, E=E, R_MAX=R + E * sk.BLOCK_M // 2, n_tb=T // sk.ROUND_PAIRS_T, K=K, BLOCK_T=sk.ROUND_PAIRS_T,
         BLOCK_E=sk.ROUND_PAIRS_E, BLOCK_F=sk.ROUND_FILL_BLOCK), [triton.Config({}, num_warps=sk.ROUND_PAIRS_WARPS)]),
        ('round_pairs_bwd', sk._round_pairs_bwd_kernel, dict(SRC=i64, DPS=f32, DG=f32, DS=f32, TK=R,
         R_MAX=R + E * sk.BLOCK_M // 2, BLOCK=sk.ROUND_FILL_BLOCK)),
        ('up_swiglu', sk._up_swiglu_kernel, dict(X=bf, W1=bf, H=bf, A=bf, **meta, N=n, D=d, E=E, stride_xt=d,
         stride_we=d * 2 * n, stride_wk=2 * n, stride_hr=2 * n, stride_ar=n, BLOCK_M=sk.BLOCK_M, DOT_PREC='tf32', **t)),
        ('grouped_mm y', sk._grouped_mm_kernel, dict(Am=bf, B=bf, C=bf, tile_expert=i32, tile_row0=i32, offsets=i32,
         R=R, N=d, KD=n, E=E, n_prog=132, stride_ar=n, stride_be=n * d, stride_bk=d, stride_bn=1, stride_cr=d,
         BLOCK_M=sk.BLOCK_M, DOT_PREC='tf32', TRANS_B=False, NB=2 * E, **t)),
        ('gather_sum', sk._gather_sum_kernel, dict(Y=bf, S=f32, rev=i32, tok_offsets=i32, O=bf, D=d, stride_yr=d,
         stride_ot=d, HAS_S=True, BLOCK_D=1024)),
        ('down_bwd', sk._down_bwd_kernel, dict(dO=bf, W2=bf, H=bf, S=f32, **meta, dH=bf, Ap=bf, dS_part=f32,
         N=n, D=d, E=E, R=R, stride_ot=d, stride_we=n * d, stride_wn=d, stride_wd=1, stride_hr=2 * n, stride_ar=n,
         BLOCK_M=sk.BLOCK_M, DOT_PREC='tf32', **t)),
        ('pair_dscore', sk._pair_dscore_kernel, dict(dS_part=f32, rev=i32, offsets=i32, dscore=f32, R=R, P=2, E=E,
         BLOCK=1024)),
        ('wgrad dW2', sk._wgrad_kernel, dict(Am=bf, B=bf, C=bf, gather_a=i32, gather_b=i32, offsets=i32, M=n, N=d, rows_hint=256,
         stride_ar=n, stride_br=d, stride_ce=n * d, stride_cm=d, GATHER_A=False, GATHER_B=True,
         DOT_PREC='tf32', SQ=None, **t)),
        ('wgrad dW1', sk._wgrad_kernel, dict(Am=bf, B=bf, C=bf, gather_a=i32, gather_b=i32, offsets=i32, M=d, N=2 * n, rows_hint=256,
         stride_ar=d, stride_br=2 * n, stride_ce=d * 2 * n, stride_cm=2 * n, GATHER_A=True, GATHER_B=False,
         DOT_PREC='tf32', SQ=None, **t)),
        ('wgrad dW1 fp32', sk._wgrad_kernel, dict(Am=bf, B=bf, C=f32, gather_a=i32, gather_b=i32, offsets=i32, M=d,
         N=2 * n, rows_hint=256, stride_ar=d, stride_br=2 * n, stride_ce=d * 2 * n, stride_cm=2 * n,
         GATHER_A=True, GATHER_B=False, DOT_PREC='tf32', SQ=f32, **t)),  # fp32 master weights' gradients, and
                                                                           # their sums of squares (training's)
        ('grouped_mm dX', sk._grouped_mm_kernel, dict(Am=bf, B=bf, C=bf, tile_expert=i32, tile_row0=i32, offsets=i32,
         R=R, N=d, KD=2 * n, E=E, n_prog=132, stride_ar=2 * n, stride_be=d * 2 * n, stride_bk=1, stride_bn=2 * n, stride_cr=d,
         BLOCK_M=sk.BLOCK_M, DOT_PREC='tf32', TRANS_B=True, NB=2 * E, **t)),
        ('adamw', sk._adamw_kernel, dict(TAB=i64, n_tensors=100, SCALE=f32, lr=3e-4, beta2=0.95,
         one_minus_beta1=0.1, one_minus_beta2=0.05, eps=1e-8, weight_decay=0.1, G_TYPE=tl.float32, S_TYPE=tl.float32,
         C_TYPE=tl.bfloat16, HAS_SCALE=True, SEARCH=7, BLOCK=sk.ADAMW_BLOCK)),  # model.TritonAdamW's step over
                                                                                # 100 tensors, clipped, bf16 copies
    ]


def hopper_launches(shape=SHAPE):
    """The sm_90-only kernels written in Gluon at their configs: the weight gradients (dW1 and dW2,
    fp32 and bf16 gradients), dA' (128- and 256-column items), the up-projection and the grouped GEMMs; [] where this Triton has no Gluon that it runs on."""
    import sonic_kernels as sk
    import triton
    if not sk._gluon_api():
        return []
    T, d, n, E, K = shape.values()
    R = T * K
    cfg = [triton.Config(sk.WG_CONFIG, num_warps=4, num_stages=1)]
    common = dict(gather='*i32', offsets='*i32', order='*i32', E=E)
    # fp32 gradients stored from registers, bf16 ones by TMA (sonic_kernels._wg_tma_store)
    tma_cfg = [triton.Config(sk.WG_TMA_STORE_CONFIG, num_warps=4, num_stages=1)]
    wide = [triton.Config(sk.WG_WIDE_CONFIG, num_warps=4, num_stages=1)]  # 192 x 256 tiles, stored from registers
    wide_tma = [triton.Config(sk.WG_WIDE_TMA_CONFIG, num_warps=4, num_stages=1)]   # and by TMA
    # fp32 gradients also with their sums of squares (sq: training's, sonic_kernels.GradSquares)
    wgrad = [(f"wgrad_hopper {name} {out[1:]}{' sq' if sq else ''}", sk._wgrad_hopper_kernel,
              dict(Am='*bf16', B='*bf16', C=out, M=M, N=N, stride_ar=M, stride_br=N, stride_ce=M * N,
                   stride_cm=N, GATHER_A=ga, TMA_STORE=out == '*bf16', SQ=sq, **common),
              cfg + wide if out == '*fp32' else tma_cfg + wide_tma)
             for name, ga, M, N in [('dW1', True, d, 2 * n), ('dW2', False, n, d)]
             for out, sq in (('*fp32', None), ('*fp32', '*fp32'), ('*bf16', None))]
    down = ('down_bwd_hopper', sk._down_bwd_hopper_kernel,
            dict(dO='*bf16', W2='*bf16', H='*bf16', S='*fp32', gather='*i32', tile_expert='*i32', tile_row0='*i32',
                 offsets='*i32', dH='*bf16', Ap='*bf16', dS_part='*fp32', N=n, D=d, E=E, R=R, stride_ot=d,
                 stride_hr=2 * n, stride_ar=n, BLOCK_M=sk.BLOCK_M, NB=triton.next_power_of_2(E)),
            [triton.Config(sk.DB_CONFIG, num_warps=4, num_stages=1), triton.Config(sk.DB_WIDE_CONFIG, num_warps=4, num_stages=1)])
    up = ('up_hopper', sk._up_hopper_kernel,
          dict(X='*bf16', W1='*bf16', H='*bf16', A='*bf16', gather='*i32', tile_expert='*i32', tile_row0='*i32',
               offsets='*i32', N=n, D=d, E=E, stride_xt=d, stride_hr=2 * n, stride_ar=n, BLOCK_M=sk.BLOCK_M,
               NB=triton.next_power_of_2(E)),
          [triton.Config(sk.UP_CONFIG, num_warps=4, num_stages=1)])
    grouped = [(f'grouped_mm_hopper {name}', sk._grouped_mm_hopper_kernel,
                dict(Am='*bf16', B='*bf16', C='*bf16', tile_expert='*i32', tile_row0='*i32', offsets='*i32', R=R, N=d,
                     KD=KD, E=E, stride_cr=d, BLOCK_M=sk.BLOCK_M, NB=triton.next_power_of_2(E), TRANS_B=tb),
                [triton.Config(sk.GM_CONFIG, num_warps=4, num_stages=1)])
               for name, KD, tb in [('y', n, False), ('dX', 2 * n, True)]]
    return wgrad + [down, up] + grouped


def compile_for(arch, jit_fn, args, num_warps, num_stages):
    """Compiles one specialisation for sm_<arch>; returns (registers, spilled bytes, shared bytes,
    tile loads left unpipelined inside loops, whether the arch's MMA op is used, whether ptxas ran
    its warp-group MMAs one at a time)."""
    import triton
    # ptxas's notes come from a compile, not from Triton's cache; Triton prints them to stdout
    triton.knobs.compilation.always_compile = True
    triton.knobs.nvidia.dump_ptxas_log = True
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    sig, consts, attrs = {}, {}, {}
    for i, p in enumerate(jit_fn.params):
        a, v = p.name, args[p.name]
        if p.is_constexpr or v is None:   # Triton makes a None argument a constant
            sig[a], consts[(i,)] = 'constexpr', v
        elif isinstance(v, str) and v.startswith('*'):
            sig[a], attrs[(i,)] = v, [['tt.divisibility', 16]]      # torch allocations are 256-byte aligned
        elif isinstance(v, float):
            sig[a] = 'fp32'
        elif v == 1:                                                 # Triton makes an integer 1 a constant
            sig[a], consts[(i,)] = 'constexpr', v
        else:
            sig[a] = 'i32'
            if v % 16 == 0:
                attrs[(i,)] = [['tt.divisibility', 16]]
    if type(jit_fn).__name__ == 'GluonJITFunction':   # the Hopper kernel written in Gluon
        from triton.experimental.gluon._runtime import GluonASTSource as ASTSource
    src = ASTSource(jit_fn, sig, constexprs=consts, attrs=attrs)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        k = triton.compile(src, target=GPUTarget('cuda', arch, 32),
                           options=dict(num_warps=num_warps, num_stages=num_stages))
    cuobjdump = Path(triton.__file__).parent / 'backends' / 'nvidia' / 'bin' / 'cuobjdump'
    with tempfile.NamedTemporaryFile(suffix='.cubin') as f:
        f.write(k.asm['cubin'])
        f.flush()
        res = subprocess.run([str(cuobjdump), '-res-usage', f.name], capture_output=True, text=True).stdout
    m = re.search(r'REG:(\d+) STACK:(\d+)', res)
    mma = TARGETS[arch][2]
    return (int(m.group(1)), int(m.group(2)), k.metadata.shared, loop_tile_loads(k.asm['ttgir']),
            mma is None or mma in k.asm['ttgir'], serialised(log.getvalue()))


def serialised(ptxas_log):
    """ptxas's reason for running a kernel's warp-group MMAs one at a time ('' if it does not)."""
    m = re.search(r'wgmma\.mma_async instructions are serialized (due to .*?)(?: in the function|$)', ptxas_log, re.M)
    return ' '.join(m.group(1).split()) if m else ''


def loop_tile_loads(ttgir):
    """Plain loads of 2-D tiles inside loops that the pipeliner left as they were. It turns a main
    loop's tile loads into asynchronous copies issued stages ahead or, for an operand it keeps in
    registers (sm_80), into a load of the next iteration's tile that the loop carries in its yield;
    a tt.load whose tile is used in its own iteration was not pipelined."""
    count, loops = 0, []   # per open loop: [indent, names of its tile loads, names its yield carries]
    for line in ttgir.splitlines():
        indent = len(line) - len(line.lstrip())
        while loops and indent <= loops[-1][0] and line.strip().startswith('}'):
            _, loads, carried = loops.pop()
            count += len(loads - carried)
        m = re.search(r'(%[\w.#]+) = tt\.load .*: tensor<\d+x\d+x!tt\.ptr', line)
        if loops and m:
            loops[-1][1].add(m.group(1))
        if loops and indent == loops[-1][0] + 2 and line.strip().startswith('scf.yield'):
            loops[-1][2].update(re.findall(r'%[\w.#]+', line.split(':')[0]))
        if '= scf.for ' in line:
            loops.append([indent, set(), set()])
    return count


def report(arch, cases=None):
    """One row per (launch, config) compiled for sm_<arch>; rows with 'error' did not compile.
    cases: (name, kernel, args, configs or None for the autotuner's), default every launch at every
    config."""
    import triton
    if cases is None:   # sm_90 and newer also build the expert GEMMs' TMA variants, which they run
        cases = launches() + [(f'{name} tma', kern, args) for name, kern, args, *_ in launches(tma=True)
                              if 'USE_TMA' in args and arch >= 90]
        if arch == 90:      # and sm_90 its warp-specialised weight gradients
            cases += hopper_launches()
    rows = []
    for name, kern, args, *cfgs in cases:
        configs = cfgs[0] if cfgs and cfgs[0] else kern.configs if isinstance(kern, triton.runtime.Autotuner) \
            else [triton.Config({}, num_warps=4, num_stages=3)]
        fn = kern.fn if isinstance(kern, triton.runtime.Autotuner) else kern
        for c in configs:
            row = dict(kernel=name, config=' '.join(f'{k}={v}' for k, v in c.kwargs.items()),
                       warps=c.num_warps, stages=c.num_stages, gemm='tl.dot' in fn.src or 'warp_specialize' in fn.src,
                       gluon=type(fn).__name__ == 'GluonJITFunction')
            try:
                row['regs'], row['spill_bytes'], row['smem'], row['sync_loads'], row['mma'], row['serial'] = \
                    compile_for(arch, fn, {**args, **c.kwargs}, c.num_warps, c.num_stages)
            except Exception as e:
                row['error'] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
            rows.append(row)
    return rows


def problems(arch, rows):
    gpu, smem_limit, mma = TARGETS[arch]
    bad = []
    for r in rows:
        where = f"{r['kernel']} [{r['config']} w{r['warps']} s{r['stages']}]"
        if 'error' in r:
            bad.append(f"{where} does not compile for sm_{arch}: {r['error']}")
        elif r['smem'] > smem_limit and smem_limit > SMALL_SMEM:
            bad.append(f"{where} needs {r['smem']} bytes of shared memory, more than an {gpu} program gets ({smem_limit})")
        elif r['gemm'] and r['sync_loads'] and not r.get('gluon'):   # Gluon's copies are explicit, not the pipeliner's
            bad.append(f"{where}: {r['sync_loads']} tile loads in its main loop are not asynchronous copies, so it is not "
                       f"software-pipelined on sm_{arch}")
        elif r['gemm'] and not r['mma']:
            bad.append(f"{where}: its tl.dot is not lowered to {mma} on sm_{arch}, the {gpu}'s fast tensor-core MMA")
        elif r['serial'] and (r['gluon'] or all(o.get('serial') for o in rows if o['kernel'] == r['kernel'])):
            # one autotuner candidate of several may be (the autotuner times them all and keeps the
            # fastest): the report marks it. A Gluon kernel's configs are chosen by shape, not timed
            bad.append(f"{where}: ptxas serialises its warp-group MMAs on sm_{arch}, {r['serial']}")
    if arch in (80, 120):
        gpus = {80: "sm_86 and sm_89 (A10, L4, L40S, RTX 3090 and 4090)", 120: f"sm_120 ({gpu})"}[arch]
        for name in dict.fromkeys(r['kernel'] for r in rows):
            if not any(r.get('smem', SMALL_SMEM + 1) <= SMALL_SMEM for r in rows if r['kernel'] == name):
                bad.append(f"{name}: no config fits the {SMALL_SMEM} bytes of shared memory a program gets on {gpus}, "
                           f"so it cannot launch there")
    return bad


GATE_SHAPES = [(72, 40), (80, 40), (80, 48)]   # (d, n): multiples of 8; d of 16; both of 16


def gates():
    """Each Hopper kernel that copies rows by cp.async, compiled for sm_90 at shapes its gate
    (sonic_kernels._use_hopper_*, on CPU tensors of those shapes) takes: a gate that lets through rows
    the kernel cannot copy would fail here, not on a user's H100, and so would anything problems()
    finds at those shapes. Returns the kernels taken per shape and the failures."""
    import torch
    import sonic_kernels as sk
    if not sk._gluon_api():
        return {}, []
    sk._use_hopper = lambda flag, name, t, ok, needs: ok   # the operand rules alone, not the device's
    taken, bad = {}, []
    for d, n in GATE_SHAPES:
        T, E, K = 64, 4, 2
        z = lambda *size: torch.zeros(*size, dtype=torch.bfloat16)
        x, w1, w2, h, ap = z(T, d), z(E, d, 2 * n), z(E, n, d), z(T * K, 2 * n), z(T * K, n)
        gate = {'up_hopper': sk._use_hopper_up(x, w1), 'down_bwd_hopper': sk._use_hopper_down_bwd(x, w2, h),
                'wgrad_hopper dW1 fp32': sk._use_hopper_wgrad(x, h, True, False),
                'wgrad_hopper dW2 fp32': sk._use_hopper_wgrad(ap, x, False, True)}
        taken[d, n] = [name for name, ok in gate.items() if ok]
        for name, kern, args, configs in hopper_launches(dict(SHAPE, d=d, n=n)):
            if name in taken[d, n]:    # one config each: the copies' width does not depend on it
                bad += problems(90, report(90, [(f"{name} at d={d} n={n}", kern, args, configs[:1])]))
    return taken, bad


def run_script(*flags):
    # in a subprocess without TRITON_INTERPRET, which the CPU tests set and under which @triton.jit
    # gives interpreter functions and the autotuners carry only their one CPU config
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    p = subprocess.run([sys.executable, __file__, *flags], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout


@pytest.mark.parametrize("arch", list(TARGETS))
def test_every_config_compiles(arch):
    assert 'configs compiled, all pipelined' in run_script('--check', '--arch', str(arch))


def test_hopper_gates_take_only_what_compiles():
    out = run_script('--gates')
    if 'no Gluon' in out:
        pytest.skip("this Triton has no Gluon, so no Hopper kernel and no gate")
    assert 'every shape a gate takes compiles' in out, out


@pytest.mark.parametrize("user", [None, "0"])
def test_kernels_keep_fused_multiply_adds(monkeypatch, user):
    # sonic_kernels sets TRITON_DEFAULT_FP_FUSION=1 unless the user has set it: Triton says nothing, and
    # the kernels build as they were timed. A user's 0 stands
    monkeypatch.delenv('TRITON_DEFAULT_FP_FUSION', raising=False)
    if user is not None:
        monkeypatch.setenv('TRITON_DEFAULT_FP_FUSION', user)
    out = run_script('--fusion')
    assert out.strip() == f"fused: {user is None}; warnings: []", out


def test_checker_flags_bad_configs():
    assert 'every bad case flagged' in run_script('--selftest')


def selftest():
    """The checker must flag what it claims to: a config ptxas cannot fit (a 256 x 256 fp32
    accumulator on 512 threads at 128 registers each, as the H200 reported; docs/LOG.md,
    2026-11-29), a main loop whose weight loads cannot be copied asynchronously (W2's k stride not
    1; on sm_80 too, where the wgrad kernels' prefetched loads must pass), and on sm_90 and sm_100
    a GEMM on 2 warps, fewer than the 4 of a warp group, which gets neither warp-group MMA nor
    tcgen05, and on sm_120 a launch none of whose configs fits its 99 KB of shared memory."""
    import triton
    named = {name: (kern, args) for name, kern, args, *_ in launches()}
    kern, args = named['wgrad dW1']
    big = [triton.Config(dict(BLOCK_M=256, BLOCK_N=256, BLOCK_K=64), num_warps=16, num_stages=3)]
    kern2, args2 = named['down_bwd']
    strided = {**args2, 'stride_wd': 2, 'stride_wn': 2 * args2['stride_wn']}
    kern3, args3 = named['grouped_mm y']
    narrow = [triton.Config(dict(BLOCK_N=64, BLOCK_K=64), num_warps=2, num_stages=3)]
    bad = problems(90, report(90, [('wgrad dW1', kern, args, big), ('down_bwd', kern2, strided, kern2.configs[:1]),
                                   ('grouped_mm y', kern3, args3, narrow)]))
    assert len(bad) == 3 and 'does not compile' in bad[0] and 'not software-pipelined' in bad[1] \
        and 'not lowered to ttng.warp_group_dot' in bad[2], bad
    bad = problems(80, report(80, [('down_bwd', kern2, strided, kern2.configs[:1])]))
    assert len(bad) == 1 and 'not software-pipelined' in bad[0], bad
    bad = problems(100, report(100, [('grouped_mm y', kern3, args3, narrow)]))
    assert len(bad) == 1 and 'not lowered to ttng.tc_gen5_mma' in bad[0], bad
    bad = problems(120, report(120, [('grouped_mm y', kern3, args3, kern3.configs[:2])]))   # 104 and 152 KB
    assert len(bad) == 1 and 'no config fits' in bad[0] and 'sm_120' in bad[0], bad
    import sonic_kernels as sk
    if sk._gluon_api():   # an accumulator read while its MMA runs: flagged; the same loop without the read: not;
        # the read as one autotuner candidate beside the loop without it: marked, not flagged (as Gluon, whose
        # configs are chosen by shape, it would be)
        cfg = {r: triton.Config(dict(READ=r), num_warps=4, num_stages=1) for r in (True, False)}
        rows = report(90, [(name, _mma_read_early, dict(Out='*fp32', n_k=64, READ=None), configs) for name, configs in
                           [('read', [cfg[True]]), ('no read', [cfg[False]]), ('both', [cfg[True], cfg[False]])]])
        bad = problems(90, rows)
        assert len(bad) == 2 and bad[0].startswith('read [') and bad[1].startswith('both [READ=True'), bad
        for r in rows[2:]:
            r['gluon'] = False   # as if a Triton kernel's autotuner candidates
        bad = problems(90, rows)
        assert len(bad) == 1 and bad[0].startswith('read [') and 'serialises' in bad[0], bad
        assert [bool(r['serial']) for r in rows] == [True, False, True, False], rows
    print("selftest: every bad case flagged")


if __name__ == '__main__':
    sys.path.insert(0, str(REPO))
    if '--selftest' in sys.argv:
        selftest()
        sys.exit(0)
    if '--fusion' in sys.argv:
        fused, warned = fusion()
        print(f"fused: {fused}; warnings: {warned}")
        sys.exit(0)
    if '--gates' in sys.argv:
        taken, bad = gates()
        if not taken:
            sys.exit(print("no Gluon in this Triton: no Hopper kernel to check") or 0)
        for shape, names in taken.items():
            print(f"d={shape[0]} n={shape[1]}: {', '.join(names) or 'none'} taken")
        if bad:
            sys.exit('\n'.join(bad))
        # rows of 8 elements go to the portable kernels; of 16, every kernel takes them
        assert not taken[72, 40] and taken[80, 40] == ['up_hopper', 'wgrad_hopper dW1 fp32', 'wgrad_hopper dW2 fp32'] \
            and len(taken[80, 48]) == 4, taken
        print("every shape a gate takes compiles")
        sys.exit(0)
    arch = int(sys.argv[sys.argv.index('--arch') + 1]) if '--arch' in sys.argv else 90
    if arch not in TARGETS:
        sys.exit(f"--arch {arch}: this checks sm_{', sm_'.join(map(str, TARGETS))}; pass one of {list(TARGETS)}")
    rows = report(arch)
    import triton
    print(f"sm_{arch}, bf16, Triton {triton.__version__}, {' '.join(f'{k}={v}' for k, v in SHAPE.items())}")
    print(f"{'kernel':<25}{'config':<51}{'w':>3}{'s':>3}{'regs':>6}{'spill B':>9}{'smem KiB':>10}{'sync loads':>11}"
          f"  MMAs")
    for r in rows:
        if 'error' in r:
            print(f"{r['kernel']:<25}{r['config']:<51}{r['warps']:>3}{r['stages']:>3}  {r['error']}")
        else:
            sync = '-' if r.get('gluon') else r['sync_loads']   # Gluon's copies are explicit, not the pipeliner's
            print(f"{r['kernel']:<25}{r['config']:<51}{r['warps']:>3}{r['stages']:>3}{r['regs']:>6}"
                  f"{r['spill_bytes']:>9}{r['smem'] / 1024:>10.1f}{sync:>11}  {'serialised' if r['serial'] else ''}".rstrip())
    bad = problems(arch, rows)
    mma = f", every GEMM on {TARGETS[arch][2]}" if TARGETS[arch][2] else ""
    serial = sum(bool(r.get('serial')) for r in rows)
    mma += f"; {serial} autotuner candidate{'s' * (serial > 1)} with serialised MMAs, timed against the others" \
        if serial else ""
    fit = "each launch with a config" if TARGETS[arch][1] <= SMALL_SMEM else "all"
    fit += f" within {TARGETS[arch][1] // 1024} KB of shared memory"
    fit += f", each launch with one within {SMALL_SMEM // 1024} KB (sm_86, sm_89)" if arch == 80 else ""
    print('\n'.join(bad) if bad else f"{len(rows)} configs compiled, all pipelined, {fit}{mma}")
    if '--check' in sys.argv and bad:
        sys.exit(1)
