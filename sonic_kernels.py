"""
sonic_kernels.py: the fine-grained MoE expert layer in Triton, IO-aware after SonicMoE
(arXiv 2512.14080). The "sonic" moe_backend of moe.py.

Notation: T tokens, d = n_embd, n = expert_size, E experts, K = top_k, R routed rows (pairs of a
token and one of its experts: R = T*K under top-K, a fixed capacity under token rounding).
Expert weights: w1 (E, d, 2n) holds [gate | up] along its last dim, w2 (E, n, d).

THE MEMORY CONTRACT
  The expert layer saves for backward only
    x  (T, d)        the layer input, which is alive anyway,
    h  (R, 2n)       the pre-activation [gate | up]: 4*R*n bytes in bf16,
    O(R) metadata    gather index, reverse index, fp32 row scores, expert offsets, tile map
                     (int32 and fp32; 12 bytes per row plus O(T + E)): the fields of Routing.
  It never saves the gathered X (R, d), a (R, n), y (R, d), or any other R x d tensor. At
  iso-FLOPs n*K is fixed, so the saved bytes stay the same as experts get finer (see
  saved_bytes_formula and tests/test_sonic.py::test_memory_contract).
  The fused router saves the same x, its weight as its GEMM read it (the bf16 halves, O(E*d)) and
  O(T*K) routing state (idx, gates, lse, ssum, the counts); the (T, E) logits are recomputed in
  backward.
  How: the gathers are fused into the GEMMs' loads; SwiGLU runs in the up-projection's epilogue;
  the router-score gradient is dS = <dO, y> = <dA', a> with a recomputed from h, so y is never
  needed; expert outputs are combined by a gather-and-sum in fp32, never by scatter-add, so the
  result is deterministic (no atomics anywhere).

THE KERNELS, in the order the data meets them; in this file each is followed by its host launcher
  router     _router_fwd_kernel      the fused router, on logits = x @ W_r^T from logit_parts: top-K,
                                     gates, logsumexp and the balancing loss's column sums in one pass
                                     (and, for token rounding, the (E, T) score matrix)
             _router_sums_kernel     the column sums over its programs, and the balancing loss
             _router_bwd_kernel      its dlogits, on the logits recomputed, from the gates' and the
                                     losses' gradients
  metadata   _route_count_kernel     each block of pairs' count per expert, before a cumsum
             _route_place_kernel     a stable counting sort of the pairs by expert, the expert and
                                     first row of every BLOCK_M tile, and each token's pairs: a Routing
  rounding   _round_select_kernel    token rounding: each expert's count rounded, its kept and added
                                     tokens taken by a radix select
             _round_pairs_kernel     the pair list in token order, built from that selection; its
                                     backward _round_pairs_bwd_kernel hands the scores' gradient back
  forward    _up_swiglu_kernel       h = X[gather] @ W1_e; a = silu(h_gate) * h_up
             _up_hopper_kernel       the same on sm_90, warp-specialised in Gluon with an epilogue
                                     warpgroup; HOPPER_UP
             _grouped_mm_kernel      y = a @ W2_e per expert segment (persistent: a program per SM
                                     steps through the tiles)
             _grouped_mm_hopper_kernel the same and dX~ below on sm_90, warp-specialised in Gluon;
                                     HOPPER_GROUPED
             _gather_sum_kernel      o[t] = sum over t's pairs p of s_p * Y[rev[p]]  (fp32)
  backward   _down_bwd_kernel        dA' = dO[gather] @ W2_e^T; epilogue: dS = rowsum(dA' * a),
                                     dH = dSwiGLU(s * dA', h), A' = s * a
             _down_bwd_hopper_kernel the same on sm_90, warp-specialised in Gluon; HOPPER_DOWN_BWD
             _pair_dscore_kernel     dS's per-N-tile parts summed, in pair order
             _wgrad_kernel           dW_e = A[gather?]^T @ B[gather?] over each expert's rows: dW2, dW1
             _wgrad_hopper_kernel    the same on sm_90, warp-specialised in Gluon (a producer warpgroup
                                     loading, two consumer warpgroups on wgmma); HOPPER_WGRAD
             _grouped_mm_kernel      dX~ = dH @ W1_e^T, then _gather_sum_kernel (s = 1) gives dx
  optimizer  _adamw_kernel           AdamW over fp32 master weights in one pass, one launch for all
                                     (model.TritonAdamW)
The file ends with the wiring: each entry point is a torch.library custom op (what torch.compile
traces) and an autograd.Function on the same functions (what eager mode runs).
All routing metadata is built on the device: no .item(), .tolist() or any host
sync in forward or backward. Grids are sized from static upper bounds and surplus programs exit;
the persistent kernels read the number of real tiles from the expert offsets on the device.

Portability: plain tl.dot, which Triton lowers to wgmma on Hopper, tcgen05 on Blackwell and mma on
sm_80/sm_89, on pointer loads: the portable path. On sm_90 and newer the operands that are not
gathered (the weights, and rows already in grouped order) may come by TMA instead, through
descriptors each program builds on the device: always in the weight gradients and the persistent
grouped GEMMs (a program builds them once for all its tiles), and in the other M-tiled GEMMs where
the reduction is long enough to repay them (TMA, _use_tma). Four kernels have Hopper-only twins,
written in Gluon with a producer warpgroup and two consumer warpgroups (and, in the up-projection and
dA', an epilogue warpgroup): on sm_90 the up-projection runs _up_hopper_kernel (HOPPER_UP), the weight
gradients _wgrad_hopper_kernel (HOPPER_WGRAD), dA' _down_bwd_hopper_kernel (HOPPER_DOWN_BWD) and the
grouped GEMMs y and dX~ _grouped_mm_hopper_kernel (HOPPER_GROUPED); _up_swiglu_kernel, _wgrad_kernel,
_down_bwd_kernel and _grouped_mm_kernel stay the portable path and what the CPU interpreter tests.
On CPU, TRITON_INTERPRET=1 runs the same kernels (use fp32 or fp16 there: the interpreter has no
bf16 arithmetic). Whether a device can run them is moe.require_cuda's to say, before any call here.
"""

import collections
import contextlib
import functools
import os
from typing import NamedTuple, Optional

import torch
import triton
import triton.language as tl
from torch.multiprocessing.reductions import StorageWeakRef

try:  # Gluon: Triton's lower-level language, for the Hopper kernels that need warp specialisation
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy as gl_async_copy
    from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma as gl_tma,
                                                                  warpgroup_mma, warpgroup_mma_wait)
except ImportError:
    gluon = None

BLOCK_M = 128  # the M tile of every expert-segmented kernel; token rounding rounds counts to this
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
# Triton 3.9 warns at the first compile that fused multiply-adds ("fp fusion") will be off by default from 3.10,
# which would build every kernel with ptxas --fmad=false, each a * b + c as two instructions. The kernels are written,
# tested and timed with them: keep them, in every Triton kernel of the process (torch.compile's too, as before 3.10),
# unless the user has set Triton's variable
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
TRITON_VERSION = tuple(int(v) for v in triton.__version__.split(".")[:2])  # (major, minor): configs that differ by it


# -----------------------------------------------------------------------------
# Helpers.

def _configs(gpu_configs, cpu_config):
    # the interpreter runs every config it is given, slowly: give it one small one
    if INTERPRET:
        return [triton.Config(cpu_config, num_warps=4, num_stages=1)]
    return [triton.Config(kw, num_warps=w, num_stages=s) for kw, w, s in gpu_configs]


def _timed(kernel_call, quantiles):
    # the autotuners' timing. Under torch.use_deterministic_algorithms (train.py's --deterministic) every
    # config that launches ties, so each process takes the first of the list that fits the GPU: timings
    # vary between runs, and configs that cut a sum differently (dA''s dS over its N tiles) give other bits
    if torch.are_deterministic_algorithms_enabled():
        kernel_call()  # a config too big for the GPU raises here, and the autotuner passes it over
        return [0.0] * len(quantiles)
    return triton.runtime.driver.active.get_benchmarker()(kernel_call, quantiles=quantiles)


def cdiv(a, b):
    # ceil(a / b) for the host's ints. triton.cdiv and triton.next_power_of_2 are constexpr functions
    # that cost the host ~4-5 us a call (Triton 3.6 and 3.9), and a layer's forward and backward
    # sized their grids and blocks with ~40 such calls
    return -(-a // b)


def next_pow2(n):
    # the least power of two at least n (0 for 0), as triton.next_power_of_2
    return 1 << (n - 1).bit_length() if n > 0 else 0


def _dot_prec(dtype):
    # fp32 inputs get exact fp32 products (tf32 would cost ~1e-3 relative error); bf16/fp16 ignore it
    return "ieee" if dtype == torch.float32 else "tf32"


def _max_tiles(R, E):
    # sum_e ceil(count_e / BLOCK_M) <= ceil(R / BLOCK_M) + E: a static grid bound with no host sync
    return cdiv(R, BLOCK_M) + E


@triton.jit
def _tile_rows(tile_expert, tile_row0, offsets, tile, E):
    # the prologue of every M-tiled kernel: M tile `tile` of the grouped order lies inside one
    # expert e's segment and starts at row0; e's segment ends at row_end. e == E marks a surplus
    # program of the static grid, which the caller ends at once. The loads sit under the test
    # (offsets has no entry E + 1), which also compiles (sm_90, Triton 3.6) to the same SASS as loads
    # written after the caller's exit: surplus programs load nothing more
    e = tl.load(tile_expert + tile)
    row0 = e * 0
    row_end = e * 0
    if e < E:
        row0 = tl.load(tile_row0 + tile)
        row_end = tl.load(offsets + e + 1)
    return e, row0, row_end


# -----------------------------------------------------------------------------
# Router: the logits GEMM on tensor cores, then one pass over the logits for the selection, the gates
# and everything the balancing losses need; backward recomputes the logits and keeps no (T, E) tensor.
# Token rounding also takes the score matrix from that pass, expert-major for its per-expert selection.

ROUTER_CODES = {"softmax_topk": 0, "topk_softmax": 1, "sigmoid": 2}


def _router_block_t(E, elems=4096):
    # a program holds a few (BLOCK_T, BLOCK_E) fp32 tiles in registers
    return max(1, min(64, elems // next_pow2(E)))


def _mm_f32(a, b, acc=None):
    # acc + a @ b with fp32 accumulation and an fp32 result: cuBLAS's (add)mm with out_dtype on CUDA (one
    # pass, no fp32 copies of the operands); elsewhere in fp32
    if not a.is_cuda:
        out = a.float() @ b.float()
        return out if acc is None else acc + out
    if acc is None:
        return torch.mm(a, b, out_dtype=torch.float32)
    return torch.addmm(acc, a, b, out_dtype=torch.float32)


@triton.jit
def _split_kernel(W, P, numel, BLOCK: tl.constexpr):
    # P (2, numel): fp32 W rounded to P's dtype (hi), then what that rounding lost, rounded too (lo)
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = i < numel
    w = tl.load(W + i, mask=mask, other=0.0)
    hi = w.to(P.dtype.element_ty)
    tl.store(P + i, hi, mask=mask)
    tl.store(P + numel + i, (w - hi.to(tl.float32)).to(P.dtype.element_ty), mask=mask)


def _parts_layout(x, weight, router_dtype):
    # (P, dtype) of _weight_parts: P stacked (E, d) parts
    if x.dtype == torch.float32 or router_dtype == "fp32":
        return 1, torch.float32
    return (2 if router_dtype == "bf16x2" and weight.dtype != x.dtype else 1), x.dtype


def _weight_parts(x, weight, router_dtype):
    # the router weight as the GEMMs read it: one part (E, d) in x's dtype or in fp32, or ('bf16x2') the
    # hi and lo bf16 halves stacked as (2E, d), so that one GEMM with N = 2E gives both products. The
    # halves come from one kernel: the five torch ops that made them were five launches each way
    n_parts, dtype = _parts_layout(x, weight, router_dtype)
    if n_parts == 2:
        if not (weight.is_cuda or INTERPRET):  # router_logits on CPU tensors: no Triton there
            hi = weight.to(x.dtype)
            return torch.cat([hi, (weight - hi.float()).to(x.dtype)])
        w = weight.float().contiguous()
        parts = torch.empty(2 * w.shape[0], w.shape[1], device=w.device, dtype=x.dtype)
        _split_kernel[(cdiv(w.numel(), 1024),)](w, parts, w.numel(), BLOCK=1024)
        return parts
    return weight.to(dtype)


def logit_parts(x, weight, router_dtype):
    """x @ parts^T (T, P*E) fp32, whose P column blocks of E sum to the logits x @ weight^T; the router's
    kernels add them as they load. x (T, d) stays in its own dtype (no fp32 copy is made or kept); the fp32
    weight (E, d) is read as bf16 (router_dtype 'bf16', P = 1), as hi + lo bf16 halves whose sum carries 16
    of fp32's 24 mantissa bits ('bf16x2', P = 2: one GEMM of N = 2E took 36 us against 73 for two GEMMs of
    N = E at T=40960, d=768, E=128 on an H200), or in fp32 ('fp32', on a transient fp32 copy of x). An fp32
    x (the CPU, fp32 training) always gets the fp32 product.
    Measured at T=24576, d=1536, E=128 against float64 (H200, 2026-11-30, docs/LOG.md): relative error
    of the logits 2.6e-7 / 2.9e-6 / 1.7e-3 (fp32 / bf16x2 / bf16), and the top-K set of 0 / 0.004% /
    1.4% of the tokens differs from float64's (TF32: 2.1e-4 and 0.18%)."""
    return _parts_product(x, _weight_parts(x, weight, router_dtype))


def _parts_product(x, w):
    if w.dtype != torch.float32:
        return _mm_f32(x, w.t())
    with no_tf32():
        return x.float() @ w.t()


@contextlib.contextmanager
def no_tf32():
    # fp32 matmuls in IEEE fp32 inside, whatever torch's flag. train.py and bench.py allow TF32, but router_dtype
    # 'fp32' means fp32 products (TF32 logits differ from float64's by ~2e-4, docs/LOG.md 2026-11-30: more than
    # bf16x2's), and bench.py's checks need an exact fp32 reference. A custom op's body runs eagerly, so the flag
    # can change there under torch.compile too
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def router_logits(x, weight, router_dtype):
    """logits = x @ weight^T (T, E) fp32, as the router's kernels see them (logit_parts, summed)."""
    parts = logit_parts(x, weight, router_dtype)
    E = weight.shape[0]
    return parts[:, :E] + parts[:, E:] if parts.shape[1] == 2 * E else parts


@triton.jit
def _topk_rounds(work, vals, cols, K: tl.constexpr, BLOCK_K: tl.constexpr, FROM_VALS: tl.constexpr):
    # top-K of each row of work (rows, E) in K rounds of a row max and its column (ties to the lower
    # expert), each taking the chosen column out of work. Returns the choices (rows, BLOCK_K) int32, their
    # values (rows, BLOCK_K): the max itself, or with FROM_VALS the same column of vals, and work with the
    # chosen columns at -inf. The max gives the value without another pass over the tile: no (rows, E)
    # rank tile stays live through the rounds, which leaves registers for more programs an SM
    kcols = tl.arange(0, BLOCK_K)
    sel = tl.zeros((work.shape[0], BLOCK_K), dtype=tl.int32)
    val = tl.zeros((work.shape[0], BLOCK_K), dtype=tl.float32)
    for k in tl.static_range(K):
        m, i = tl.max(work, axis=1, return_indices=True, return_indices_tie_break_left=True)
        hit = cols[None, :] == i[:, None]
        if FROM_VALS:
            m = tl.sum(tl.where(hit, vals, 0.0), axis=1)
        work = tl.where(hit, float("-inf"), work)
        sel = tl.where(kcols[None, :] == k, i[:, None], sel)
        val = tl.where(kcols[None, :] == k, m[:, None], val)
    return sel, val, work


@triton.jit
def _router_block(L, BIAS, IDX, G, LSE, SSUM, S, CH, T, E, stride_lt, blk, K: tl.constexpr, ROUTER: tl.constexpr,
                  NORM: tl.constexpr, PARTS: tl.constexpr, SCORES: tl.constexpr, BLOCK_T: tl.constexpr,
                  BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr):
    # _router_fwd_kernel's work on row block blk: writes its idx, gates, lse and ssum (with SCORES its
    # columns of S and CH too), and returns its column sums of P, its count of the tokens that chose each expert
    # and its sum of lse^2
    rows = blk * BLOCK_T + tl.arange(0, BLOCK_T)
    cols = tl.arange(0, BLOCK_E)
    mask_t, mask_e = rows < T, cols < E
    mask = mask_t[:, None] & mask_e[None, :]
    l_ptrs = L + rows[:, None].to(tl.int64) * stride_lt + cols[None, :]
    logits = tl.load(l_ptrs, mask=mask, other=0.0)
    if PARTS == 2:
        logits += tl.load(l_ptrs + E, mask=mask, other=0.0)
    logits = tl.where(mask_e[None, :], logits, float("-inf"))  # padded rows read 0: every row has a finite max
    row_max = tl.max(logits, axis=1)
    ex = tl.exp(logits - row_max[:, None])                     # 0 on padded experts
    se = tl.sum(ex, axis=1)
    lse = row_max + tl.log(se)
    if ROUTER == 2:
        s = tl.where(mask_e[None, :], tl.sigmoid(logits), 0.0)
        ssum = tl.sum(s, axis=1)
        bias = tl.load(BIAS + cols, mask=mask_e, other=0.0)
        work = tl.where(mask_e[None, :], s + bias[None, :], float("-inf"))
        P = s / ssum[:, None]
        scores = s
    else:
        ssum = se
        work = logits
        P = ex / se[:, None]
        scores = P
    if SCORES:  # token rounding's scores (route_topk's probs: the softmax over all E, or the sigmoids), (E, T)
        tl.store(S + cols[None, :].to(tl.int64) * T + rows[:, None], scores, mask=mask)
    psum = tl.sum(tl.where(mask, P, 0.0), axis=0)
    # the selection (_topk_rounds): the softmax routers' gates come from the chosen logits, the sigmoid
    # router's from the chosen sigmoids (its work adds the bias)
    sel, v, work = _topk_rounds(work, s if ROUTER == 2 else work, cols, K, BLOCK_K, ROUTER == 2)
    kcols = tl.arange(0, BLOCK_K)
    kmask = mask_t[:, None] & (kcols < K)[None, :]
    if ROUTER == 0:
        w = tl.where(kmask, tl.exp(v - row_max[:, None]), 0.0)       # the top logit is the row max: the sum is >= 1
    elif ROUTER == 1:
        w = tl.where(kmask, tl.exp(v - row_max[:, None]) / se[:, None], 0.0)
    else:
        w = tl.where(kmask, v, 0.0)
    if ROUTER == 1 and not NORM:
        gates = w
    else:
        wsum = tl.sum(w, axis=1)
        gates = w / tl.where(wsum > 0, wsum, 1.0)[:, None]
    out = rows[:, None].to(tl.int64) * K + kcols[None, :]
    tl.store(IDX + out, sel.to(tl.int64), mask=kmask)
    tl.store(G + out, gates, mask=kmask)
    tl.store(LSE + rows, lse, mask=mask_t)
    tl.store(SSUM + rows, ssum, mask=mask_t)
    # the chosen columns are the real experts that work now holds at -inf (every logit is finite)
    chosen = (work == float("-inf")) & mask
    if SCORES:  # and token rounding's chosen mask beside its scores, (E, T)
        tl.store(CH + cols[None, :].to(tl.int64) * T + rows[:, None], chosen.to(tl.int8), mask=mask)
    return psum, tl.sum(chosen.to(tl.int32), axis=0), tl.sum(tl.where(mask_t, lse * lse, 0.0))


@triton.jit
def _router_fwd_kernel(
    L, BIAS, IDX, G, LSE, SSUM, PSUM, CNT,  # logits (T, E) fp32, bias (E,); out: idx (T, K) int64, gates (T, K),
    T, E,                                   # lse (T,), sigmoid row sums (T,), and per program (programs, E): the
                                            # column sums of P (psum) and the tokens that chose each expert (cnt)
    S, CH,                                  # with SCORES, out: the scores (E, T) fp32 (route_topk's probs) and
                                            # the chosen mask (E, T) int8
    stride_lt,                              # logits come as PARTS column blocks of E (logit_parts), summed here
    ZP, z_scale,                            # with ZLOSS, out: z_scale * the program's sum of lse^2 (ZP[pid])
    n_iter,                                 # row blocks a program takes, one after another
    K: tl.constexpr, ROUTER: tl.constexpr, NORM: tl.constexpr, PARTS: tl.constexpr, ZLOSS: tl.constexpr,
    SCORES: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # ROUTER 0 softmax_topk: top-K of the logits, softmax over the K chosen (SonicMoE's default)
    #        1 topk_softmax: softmax over all E, top-K (the same choice: softmax is monotone), NORM renormalises
    #        2 sigmoid:      top-K of sigmoid + bias (DeepSeek-V3), gates are the chosen sigmoids renormalised
    # P, the score matrix of the balancing loss, is the softmax (0, 1) or the row-normalised sigmoid (2);
    # only its column sums leave the kernel, taken before the selection so that only the selection's
    # working tile stays live through its K rounds (fewer registers: more programs an SM). A program takes
    # n_iter small row blocks (a row's reductions stay inside one warp) and adds up their column sums, so
    # that _router_sums_kernel reads as few partial rows as one large block a program would leave
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_E)
    mask_e = cols < E
    psum = tl.zeros((BLOCK_E,), dtype=tl.float32)
    cnt = tl.zeros((BLOCK_E,), dtype=tl.int32)
    zsum = tl.sum(psum, axis=0)
    for i in range(0, n_iter):
        p, c, z = _router_block(L, BIAS, IDX, G, LSE, SSUM, S, CH, T, E, stride_lt, pid * n_iter + i, K, ROUTER, NORM,
                                PARTS, SCORES, BLOCK_T, BLOCK_E, BLOCK_K)
        psum += p
        cnt += c
        zsum += z
    tl.store(PSUM + pid * E + cols, psum, mask=mask_e)
    tl.store(CNT + pid * E + cols, cnt, mask=mask_e)
    if ZLOSS:
        tl.store(ZP + pid, z_scale * zsum)


@triton.jit
def _router_sums_kernel(PSUM, CNT, counts, AUX, aux_scale,   # per program (n_prog, E); out: the counts' sums (E,),
                        n_prog, E,                            # AUX[pid] = aux_scale * sum of counts * psum over
                        BLOCK_P: tl.constexpr, BLOCK_E: tl.constexpr):   # this program's columns
    # the router kernel's column sums, added over its programs in a fixed order (no atomics), and each
    # column block's share of the balancing loss: one launch for the two torch reductions and the four
    # ops that formed the loss from them (each way), which took as long to launch as to run
    cols = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
    mask_e = cols < E
    acc_p = tl.zeros((BLOCK_P, BLOCK_E), dtype=tl.float32)
    acc_c = tl.zeros((BLOCK_P, BLOCK_E), dtype=tl.int32)
    for p0 in range(0, n_prog, BLOCK_P):
        rows = p0 + tl.arange(0, BLOCK_P)
        mask = (rows < n_prog)[:, None] & mask_e[None, :]
        off = rows[:, None] * E + cols[None, :]
        acc_p += tl.load(PSUM + off, mask=mask, other=0.0)
        acc_c += tl.load(CNT + off, mask=mask, other=0)
    p_e, c_e = tl.sum(acc_p, axis=0), tl.sum(acc_c, axis=0)
    tl.store(counts + cols, c_e.to(tl.int64), mask=mask_e)
    tl.store(AUX + tl.program_id(0), aux_scale * tl.sum(tl.where(mask_e, c_e.to(tl.float32) * p_e, 0.0)))


# the router's selection kernel's row block (elements / E rows) and warps. From E = ROUTER_FWD_MIN_E, 512
# elements on one warp (a row's max and sum within a warp): the router's forward 445 -> 371 us at T = 32768,
# E = 256, 233 -> 198 at 1.4B's E = 128; below it 2048 on 4 warps, since one warp made the sigmoid router 17%
# slower at E = 64 (H200, docs/LOG.md, 2026-12-02). A program takes enough row blocks that the programs
# number about ROUTER_FWD_PROGRAMS, so _router_sums_kernel reads as many partial rows as before
ROUTER_FWD_ELEMS, ROUTER_FWD_WARPS, ROUTER_FWD_PROGRAMS, ROUTER_FWD_MIN_E = 512, 1, 4096, 128


def _router_fwd_tile(E):
    """(elements, warps) of _router_fwd_kernel's row block at E experts."""
    return (ROUTER_FWD_ELEMS, ROUTER_FWD_WARPS) if E >= ROUTER_FWD_MIN_E else (2048, 4)
SUMS_BLOCK_E = 16  # experts a program of _router_sums_kernel adds up: its share of the balancing loss is one part


def _loss_scales(T, E, K, aux_coef, z_coef):
    # MoE.router_losses as the kernels take it: aux_coef * E * sum_e f_e P_e, with f_e = counts_e / (T K)
    # and P_e = psum_e / T, is aux_scale * sum_e counts_e psum_e; z_coef * mean_t lse_t^2 is z_scale * sum_t lse_t^2
    T = max(T, 1)
    return aux_coef * E / (T * K * T), z_coef / T


def router_fwd_impl(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, k: int, router: int, norm: bool,
                    router_dtype: str, aux_coef: float, z_coef: float, scores: bool) -> tuple[(torch.Tensor,) * 9]:
    """idx (T, k) int64, gates (T, k) fp32, loss () fp32 (MoE.router_losses: the balancing loss and the
    z-loss), counts (E,) int64: what router returns; then what backward reads: lse (T,), ssum (T,) (the
    softmax's denominators, or the sigmoids' row sums) and the weight as the GEMM read it (_weight_parts);
    last, with scores, token rounding's score matrix (E, T) fp32 and top-K's choice as an (E, T) bool
    mask (else empty)."""
    T, E = x.shape[0], weight.shape[0]
    aux_scale, z_scale = _loss_scales(T, E, k, aux_coef, z_coef)
    w = _weight_parts(x, weight, router_dtype)
    logits = _parts_product(x, w)                                     # (T, P*E) fp32, transient
    elems, warps = _router_fwd_tile(E)
    bt = _router_block_t(E, elems)
    n_iter = cdiv(cdiv(T, bt), ROUTER_FWD_PROGRAMS)
    grid, n_cb = cdiv(T, bt * n_iter), cdiv(E, SUMS_BLOCK_E)
    idx = torch.empty(T, k, device=x.device, dtype=torch.int64)
    gates = torch.empty(T, k, device=x.device, dtype=torch.float32)
    lse, ssum = torch.empty(T, device=x.device), torch.empty(T, device=x.device)
    psum = torch.empty(grid, E, device=x.device)
    cnt = torch.empty(grid, E, device=x.device, dtype=torch.int32)
    zloss = z_coef != 0
    # the loss's parts, added by one sum: the balancing loss's per column block, the z-loss's per program
    parts = torch.empty(n_cb + (grid if zloss else 0), device=x.device)
    S = torch.empty(E if scores else 0, T, device=x.device)
    chosen = torch.empty(E if scores else 0, T, device=x.device, dtype=torch.bool)
    _router_fwd_kernel[(grid,)](logits, bias, idx, gates, lse, ssum, psum, cnt, T, E, S, chosen.view(torch.int8),
                                logits.stride(0),
                                parts[n_cb:], z_scale, n_iter, K=k, ROUTER=router, NORM=norm, PARTS=logits.shape[1] // E,
                                ZLOSS=zloss, SCORES=scores, BLOCK_T=bt, BLOCK_E=next_pow2(E),
                                BLOCK_K=next_pow2(k), num_warps=warps)
    counts = torch.empty(E, device=x.device, dtype=torch.int64)
    _router_sums_kernel[(n_cb,)](psum, cnt, counts, parts, aux_scale, grid, E, BLOCK_P=128,
                                 BLOCK_E=SUMS_BLOCK_E)
    # an op's output may not be one of its inputs: where the GEMM read the weight itself, backward reads it too
    return idx, gates, parts.sum(), counts, lse, ssum, (w.new_empty(0) if w is weight else w), S, chosen


@triton.jit
def _router_bwd_kernel(
    L, LSE, SSUM, IDX, G, DG, DLOSS, COUNTS, DL, DL_LO,  # logits (T, PARTS*E) recomputed; lse, ssum (T,); idx,
    T, E, aux_scale, z_scale,                            # gates, dgates (T, K); the loss's gradient (), counts
    stride_lt, stride_dt,                                # (E,); out: dlogits (T, E), with SPLIT its bf16 hi and lo
    DS,                                                  # with SCORES, the scores' gradient (E, T) fp32
    K: tl.constexpr, ROUTER: tl.constexpr, NORM: tl.constexpr, SPLIT: tl.constexpr, PARTS: tl.constexpr,
    LOSS: tl.constexpr, SCORES: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
):
    # dlogits of one block of rows, from three terms: the gates (through the router's selection), the
    # balancing loss aux_scale * sum_e counts_e psum_e (through P's column sums psum: dpsum_e = dloss *
    # aux_scale * counts_e) and the z-loss z_scale * sum_t lse_t^2 (dlse_t = dloss * 2 z_scale lse_t); with
    # SCORES a fourth, token rounding's added pairs through the score matrix. The K chosen experts enter as
    # K masked column compares, since a tile cannot be indexed by a per-row expert id.
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    cols = tl.arange(0, BLOCK_E)
    mask_t, mask_e = rows < T, cols < E
    mask = mask_t[:, None] & mask_e[None, :]
    rows64 = rows.to(tl.int64)
    l_ptrs = L + rows64[:, None] * stride_lt + cols[None, :]
    logits = tl.load(l_ptrs, mask=mask, other=0.0)
    if PARTS == 2:
        logits += tl.load(l_ptrs + E, mask=mask, other=0.0)
    lse = tl.load(LSE + rows, mask=mask_t, other=0.0)
    p = tl.where(mask, tl.exp(logits - lse[:, None]), 0.0)  # the softmax over all E
    # sum_k g_k dg_k, and the chosen experts' dense one-hot sum
    gdg = tl.zeros((BLOCK_T,), dtype=tl.float32)
    chosen = tl.zeros((BLOCK_T, BLOCK_E), dtype=tl.int1)
    for k in tl.static_range(K):
        g = tl.load(G + rows64 * K + k, mask=mask_t, other=0.0)
        dg = tl.load(DG + rows64 * K + k, mask=mask_t, other=0.0)
        gdg += g * dg
        e = tl.load(IDX + rows64 * K + k, mask=mask_t, other=-1)
        chosen = chosen | (cols[None, :] == e[:, None])
    # dsel: the gradient reaching the chosen experts' selection scores (logits, softmax probs or sigmoids)
    dsel = tl.zeros((BLOCK_T, BLOCK_E), dtype=tl.float32)
    for k in tl.static_range(K):
        g = tl.load(G + rows64 * K + k, mask=mask_t, other=0.0)
        dg = tl.load(DG + rows64 * K + k, mask=mask_t, other=0.0)
        e = tl.load(IDX + rows64 * K + k, mask=mask_t, other=-1)
        if ROUTER == 0:
            d = g * (dg - gdg)                 # softmax over the K chosen logits
        elif ROUTER == 1 and not NORM:
            d = dg
        else:
            d = dg - gdg                        # renormalised: divided by the chosen sum below
        dsel += tl.where(cols[None, :] == e[:, None], d[:, None], 0.0)
    if LOSS:
        dloss = tl.load(DLOSS)
        a = dloss * aux_scale * tl.load(COUNTS + cols, mask=mask_e, other=0).to(tl.float32)  # dP[t, e] = a_e
        dlse = (2.0 * dloss * z_scale) * lse
    else:
        a = tl.zeros((BLOCK_E,), dtype=tl.float32)
        dlse = tl.zeros((BLOCK_T,), dtype=tl.float32)
    if SCORES:  # the scores are the sigmoids (router 2) or the softmax over all E: they join ds or v below
        dsc = tl.load(DS + cols[None, :].to(tl.int64) * T + rows64[:, None], mask=mask, other=0.0)
    else:
        dsc = tl.zeros_like(p)
    if ROUTER == 2:
        s = tl.where(mask, tl.sigmoid(logits), 0.0)
        ssum = tl.load(SSUM + rows, mask=mask_t, other=1.0)
        csum = tl.sum(tl.where(chosen, s, 0.0), axis=1)
        ds = dsel / tl.where(csum > 0, csum, 1.0)[:, None] + dsc
        P = s / ssum[:, None]
        ds += (a[None, :] - tl.sum(P * a[None, :], axis=1)[:, None]) / ssum[:, None]
        dl = ds * s * (1.0 - s)
    else:
        if ROUTER == 0:
            dl = dsel
            v = a[None, :] + dsc
        else:
            if NORM:
                csum = tl.sum(tl.where(chosen, p, 0.0), axis=1)
                dsel = dsel / tl.where(csum > 0, csum, 1.0)[:, None]
            dl = tl.zeros_like(p)
            v = dsel + a[None, :] + dsc
        dl += p * (v - tl.sum(p * v, axis=1)[:, None])  # the softmax Jacobian
    dl += dlse[:, None] * p                                     # d lse / d logits = softmax
    out = rows64[:, None] * stride_dt + cols[None, :]
    if SPLIT:  # hi + lo in the activation dtype, for the tensor-core GEMMs of dx and dW
        hi = dl.to(DL.dtype.element_ty)
        tl.store(DL + out, hi, mask=mask)
        tl.store(DL_LO + out, (dl - hi.to(tl.float32)).to(DL_LO.dtype.element_ty), mask=mask)
    else:
        tl.store(DL + out, dl, mask=mask)


def router_bwd_impl(x: torch.Tensor, w: torch.Tensor, idx: torch.Tensor, gates: torch.Tensor, lse: torch.Tensor,
                    ssum: torch.Tensor, counts: torch.Tensor, dgates: torch.Tensor, dloss: Optional[torch.Tensor],
                    dscores: Optional[torch.Tensor], router: int, norm: bool, aux_coef: float,
                    z_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """dx (T, d) and dweight (E, d) fp32 from the gradients of gates, of the loss and of the scores (E, T)
    (None: not used).
    w: the weight as the forward's GEMM read it (_weight_parts), kept for backward: O(E d), made once."""
    T, E, k = x.shape[0], counts.shape[0], idx.shape[1]
    aux_scale, z_scale = _loss_scales(T, E, k, aux_coef, z_coef)
    logits = _parts_product(x, w)                                     # recomputed: nothing (T, E) was saved
    split = w.dtype != torch.float32
    # with split, dlogits' bf16 hi and lo halves side by side in one (T, 2E) buffer, for one dW GEMM
    dl2 = torch.empty(T, 2 * E if split else E, device=x.device, dtype=x.dtype if split else torch.float32)
    dl, dl_lo = (dl2[:, :E], dl2[:, E:]) if split else (dl2, dl2)
    bt = _router_block_t(E)
    loss = dloss is not None
    _router_bwd_kernel[(cdiv(T, bt),)](logits, lse, ssum, idx, gates, dgates.float().contiguous(),
                                       dloss.float() if loss else lse, counts, dl, dl_lo, T, E, aux_scale,
                                       z_scale, logits.stride(0), dl2.stride(0),
                                       lse if dscores is None else dscores.float().contiguous(), K=k, ROUTER=router,
                                       NORM=norm, SPLIT=split, PARTS=logits.shape[1] // E, LOSS=loss,
                                       SCORES=dscores is not None, BLOCK_T=bt, BLOCK_E=next_pow2(E))
    del logits
    if not split:
        with no_tf32():
            return (dl @ w).to(x.dtype), dl.t() @ x.float()
    # dx in the activation dtype straight from one GEMM: the lo half of dlogits would change the router's
    # share of dx by 2^-9 of itself, below the bf16 rounding of dx. The fp32 weight's gradient keeps both
    # halves (one GEMM over the stacked halves, then their sum), so it is as accurate as an fp32 GEMM on
    # the bf16 x.
    dx = dl @ w[:E]                                                  # hi: the weight in x's dtype
    dw2 = _mm_f32(dl2.t(), x)                                        # (2E, d): hi's product, then lo's
    return dx, dw2[:E] + dw2[E:]


# -----------------------------------------------------------------------------
# Routing metadata: a stable counting sort of the pairs by expert, in blocks of META_BLOCK pairs.

class Routing(NamedTuple):
    """Where every routed row lives, built on the device by routing_metadata. The grouped order is
    a stable sort of the pairs (token order) by expert."""
    gather_idx: torch.Tensor   # (R,) int32: the source token of each grouped row
    offsets: torch.Tensor      # (E+1,) int32: each expert's segment of the grouped order
    rev: torch.Tensor          # (R,) int32: the grouped row of each pair
    tok_offsets: torch.Tensor  # (T+1,) int32: each token's range of pairs
    tile_expert: torch.Tensor  # (max_tiles,) int32: the expert of each BLOCK_M tile, E for a surplus tile
    tile_row0: torch.Tensor    # (max_tiles,) int32: the first row of each tile (0 for a surplus tile)
    row_score: torch.Tensor    # (R,) fp32: the pair scores in grouped order


META_BLOCK = 128  # pairs per program; a pair's stable rank compares it with every pair of its block


@triton.jit
def _route_count_kernel(pair_exp, counts, R, n_blk,      # pair_exp (R,) in [0, E]; out: counts (NB, n_blk) int32
                        BLOCK: tl.constexpr, NB: tl.constexpr):
    # counts[e, b] = pairs of block b routed to expert e (bin E: unused slots)
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    e = tl.load(pair_exp + p, mask=p < R, other=0).to(tl.int32)
    h = tl.histogram(e, NB, mask=p < R)
    tl.store(counts + tl.arange(0, NB) * n_blk + tl.program_id(0), h)


@triton.jit
def _route_scatter(pair_tok, pair_exp, pair_score, counts, ends, gather_idx, rev, row_score, R, n_blk, b,
                   BLOCK: tl.constexpr, PER_TOK: tl.constexpr):
    # block b's pairs to their grouped rows. PER_TOK > 0: pair_tok is not read, pair p being token
    # p // PER_TOK's (plain top-K's token order). A pair's grouped row = where its (expert, block) run
    # starts + how many earlier pairs of the block share its expert, so the sort is stable: rows of an
    # expert stay in token order
    i = tl.arange(0, BLOCK)
    p = b * BLOCK + i
    mask = p < R
    e = tl.load(pair_exp + p, mask=mask, other=-1).to(tl.int32)
    before = (e[:, None] == e[None, :]) & (i[None, :] < i[:, None])       # (BLOCK, BLOCK)
    rank = tl.sum(before.to(tl.int32), axis=1)
    run = tl.where(mask, e, 0) * n_blk + b
    row = tl.load(ends + run, mask=mask, other=0) - tl.load(counts + run, mask=mask, other=0) + rank
    if PER_TOK > 0:
        tok = p // PER_TOK
    else:
        tok = tl.load(pair_tok + p, mask=mask, other=0).to(tl.int32)
    tl.store(gather_idx + row, tok, mask=mask)
    tl.store(rev + p, row, mask=mask)
    tl.store(row_score + row, tl.load(pair_score + p, mask=mask, other=0.0).to(tl.float32), mask=mask)


@triton.jit
def _tile_map(ends, offsets, tile_expert, tile_row0, n_blk, E, n_tiles, b,
              BLOCK_M: tl.constexpr, NB: tl.constexpr, BLOCK_T: tl.constexpr):
    # expert offsets (block 0), then tiles b * BLOCK_T onwards of the BLOCK_M tiles of each expert's
    # segment: tile t belongs to the expert whose tiles end past t; every program derives the (small)
    # per-expert vectors itself. Expert by expert, so the programs running at once share an expert's
    # weights: the tiles ordered by their tokens (a token's K experts close in time, its gathered row
    # read again from L2) took longer at every shape, in dA', the up-projection and y (docs/LOG.md, 2026-12-03)
    ex = tl.arange(0, NB)
    off = tl.load(ends + ex * n_blk - 1, mask=(ex > 0) & (ex <= E), other=0)   # rows of experts < ex
    nxt = tl.load(ends + (ex + 1) * n_blk - 1, mask=ex < E, other=0)
    tiles = tl.where(ex < E, (nxt - off + BLOCK_M - 1) // BLOCK_M, 0)
    tile_end = tl.cumsum(tiles, 0)
    if b == 0:
        tl.store(offsets + ex, off, mask=ex <= E)
    t = b * BLOCK_T + tl.arange(0, BLOCK_T)
    done = tile_end[None, :] <= t[:, None]                                  # (BLOCK_T, NB)
    e_t = tl.minimum(tl.sum(done.to(tl.int32), axis=1), E)                  # E: a surplus tile
    first = tl.sum(tl.where(done, tiles[None, :], 0), axis=1)              # e_t's first tile
    row0 = tl.sum(tl.where(ex[None, :] == e_t[:, None], off[None, :], 0), axis=1) + (t - first) * BLOCK_M
    tl.store(tile_expert + t, e_t, mask=t < n_tiles)
    tl.store(tile_row0 + t, tl.where(e_t < E, row0, 0), mask=t < n_tiles)


@triton.jit
def _route_place_kernel(pair_tok, pair_exp, pair_score, counts, ends,   # ends (NB * n_blk,): counts' expert-major cumsum
                        gather_idx, rev, row_score,                     # out: (R,) int32, (R,) int32, (R,) fp32,
                        offsets, tile_expert, tile_row0, tok_offsets,   # (E+1,), the tile map (n_tiles,) x 2, (T+1,)
                        R, T, n_blk, E, n_tiles,
                        BLOCK: tl.constexpr, PER_TOK: tl.constexpr, BLOCK_M: tl.constexpr, NB: tl.constexpr,
                        BLOCK_T: tl.constexpr):
    # the three jobs that follow the cumsum, in one launch (each launch costs the host 23-47 us, and a
    # forward at the small shapes waits on the host): program b places pair block b, makes tile block
    # b of the tile map and, for plain top-K (PER_TOK > 0), token block b's pair offsets
    b = tl.program_id(0)
    if b < n_blk:
        _route_scatter(pair_tok, pair_exp, pair_score, counts, ends, gather_idx, rev, row_score, R, n_blk, b,
                       BLOCK, PER_TOK)
    if b * BLOCK_T < n_tiles:
        _tile_map(ends, offsets, tile_expert, tile_row0, n_blk, E, n_tiles, b, BLOCK_M, NB, BLOCK_T)
    if PER_TOK > 0:
        t = b * BLOCK + tl.arange(0, BLOCK)
        tl.store(tok_offsets + t, t * PER_TOK, mask=t <= T)


def routing_metadata(pair_tok, pair_exp, pair_score, T, E) -> Routing:
    """The Routing of a pair list (R,) each, in token order; expert E marks an unused slot. pair_tok
    None: R / T pairs a token, pair p being token p // (R / T)'s (plain top-K), which saves the list's
    two ops and the search for each token's pairs: a forward at the small shapes waits on the host.
    A counting sort in two small kernels and one cumsum: a stable argsort and the ~30 torch ops
    that built this before took 0.36-0.49 ms of host time per forward (docs/LOG.md, 2026-11-29)."""
    R, dev = pair_exp.numel(), pair_exp.device
    per_tok = 0 if pair_tok is not None else R // max(T, 1)
    i32 = dict(device=dev, dtype=torch.int32)
    n_blk, nb = cdiv(R, META_BLOCK), next_pow2(E + 1)
    counts = torch.empty(nb, n_blk, **i32)            # (expert bin, block of pairs): pairs in it
    _route_count_kernel[(n_blk,)](pair_exp, counts, R, n_blk, BLOCK=META_BLOCK, NB=nb)
    # expert-major running count: where each (expert, block) run ends in the grouped order
    ends = torch.cumsum(counts.view(-1), 0, dtype=torch.int32)
    gather_idx, rev = torch.empty(R, **i32), torch.empty(R, **i32)
    row_score = torch.empty(R, device=dev, dtype=torch.float32)
    tiles = _max_tiles(R, E)
    offsets, tile_expert, tile_row0 = torch.empty(E + 1, **i32), torch.empty(tiles, **i32), torch.empty(tiles, **i32)
    tok_offsets = torch.empty(T + 1, **i32)
    bt = max(1, min(32, 8192 // nb))                  # a program's tile-map block holds a (bt, nb) table
    grid = max(n_blk, cdiv(tiles, bt), cdiv(T + 1, META_BLOCK) if per_tok else 0)
    _route_place_kernel[(grid,)](pair_exp if pair_tok is None else pair_tok, pair_exp, pair_score, counts, ends,
                                 gather_idx, rev, row_score, offsets, tile_expert, tile_row0, tok_offsets,
                                 R, T, n_blk, E, tiles, BLOCK=META_BLOCK, PER_TOK=per_tok, BLOCK_M=BLOCK_M, NB=nb,
                                 BLOCK_T=bt)
    if pair_tok is not None:
        torch.searchsorted(pair_tok, torch.arange(T + 1, device=dev, dtype=pair_tok.dtype), out_int32=True,
                           out=tok_offsets)
    return Routing(gather_idx, offsets, rev, tok_offsets, tile_expert, tile_row0, row_score)


# -----------------------------------------------------------------------------
# Token rounding (moe.round_tokens' rule) on the sonic router's outputs: round_pairs.

ROUND_MODES = {"nearest": 0, "up": 1, "down": 2}


@triton.jit
def _round_key(P, CH, base, t, m):
    # chosen tokens rank first, then by score: the scores are >= 0 (softmax or sigmoid), so their
    # fp32 bits order like their values, and key = chosen * 2^31 + bits orders like (chosen, score)
    p = tl.load(P + base + t, mask=m, other=0.0)
    ch = tl.load(CH + base + t, mask=m, other=0)
    return (ch.to(tl.int64) << 31) | p.to(tl.int32, bitcast=True).to(tl.int64)


@triton.jit
def _round_select_kernel(P, CH, F, SEL, LOAD,  # P (E, T) fp32 scores, CH (E, T) int8 chosen, F (E,) int64 tokens
                         T, E, TILE,           # that chose each expert; out: SEL (E, T) int8, the selection, and
                         MODE: tl.constexpr,   # LOAD (3, E) int64: each expert's rounded count, dropped, added
                         BLOCK_T: tl.constexpr):
    # one program per expert rounds its count as round_tokens does (MODE: ROUND_MODES) and takes that many
    # of its highest keys. A radix select (four passes of 8-bit digits, from the top) finds the c-th
    # highest key without sorting the row; a fifth pass takes every key above it and, of the keys equal
    # to it, the lowest tokens, as a stable sort would
    e = tl.program_id(0)
    base = e.to(tl.int64) * T
    f = tl.load(F + e)
    lo = f // TILE * TILE
    hi = (f + TILE - 1) // TILE * TILE
    if MODE == 0:    # nearest; ties go up
        c = tl.where(f - lo >= hi - f, hi, lo)
    elif MODE == 1:  # up
        c = hi
    else:            # down
        c = lo
    c = tl.where(c > T, lo, c)                  # an expert cannot take more than T
    tl.store(LOAD + e, c)
    tl.store(LOAD + E + e, tl.maximum(f - c, 0))
    tl.store(LOAD + 2 * E + e, tl.maximum(c - f, 0))
    need = c.to(tl.int32)                       # how many to take at or below the digits fixed so far
    prefix = e.to(tl.int64) * 0                  # the key's digits fixed so far
    bins = tl.arange(0, 256)
    for i in tl.static_range(4):
        shift = 24 - 8 * i                       # the digit: bits shift .. shift+7
        hist = tl.zeros((256,), dtype=tl.int32)
        for t0 in range(0, T, BLOCK_T):
            t = t0 + tl.arange(0, BLOCK_T)
            m = t < T
            key = _round_key(P, CH, base, t, m)
            match = m & ((key >> (shift + 8)) == prefix)
            hist += tl.histogram(((key >> shift) & 255).to(tl.int32), 256, mask=match)
        at_or_above = tl.sum(hist, axis=0) - tl.cumsum(hist, 0) + hist  # keys with this digit or a higher one
        d = tl.sum((at_or_above >= need).to(tl.int32), axis=0) - 1      # the highest digit with enough
        need -= tl.sum(tl.where(bins > d, hist, 0), axis=0)
        prefix = prefix * 256 + d
    # c == 0 leaves need = 0 and prefix = 2^32 - 1, above every key: nothing is taken
    n_eq = need * 0
    for t0 in range(0, T, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        m = t < T
        key = _round_key(P, CH, base, t, m)
        eq = m & (key == prefix)
        rank = n_eq + tl.cumsum(eq.to(tl.int32), 0) - 1                # among equal keys, in token order
        take = m & ((key > prefix) | (eq & (rank < need)))
        n_eq += tl.sum(eq.to(tl.int32), axis=0)
        tl.store(SEL + base + t, take.to(tl.int8), mask=m)


@triton.jit
def _round_pairs_kernel(SEL, S, IDX, G, ENDS,  # SEL, S (E, T): the selection, the scores; IDX, G (T, K): top-K's
                        PT, PE, PS, SRC,       # experts and gates; ENDS (T,) int32: where each token's pairs end
                        T, E, R_MAX, n_tb,     # out, (R_MAX,) each: the pair list's token, expert, score, and the
                        K: tl.constexpr,       # score's source: t*K + k for a gate, T*K + e*T + t for a score
                        BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr):
    # the first n_tb programs take BLOCK_T tokens each and walk their experts BLOCK_E at a time, a running
    # count per token: a token's pairs go to consecutive slots by expert, so the list is in (token, expert)
    # order with no sort. The programs after them mark the list's slots past the last pair unused (token T,
    # expert E, score 0), BLOCK_F each. Tiles stay small and int32 (offsets inside an expert chunk, from
    # its int64 base): one (E, BLOCK_T) int64 tile a program took 0.4-0.7 ms a layer at E = 128, where
    # a chunked walk took 54-68 us (H100, docs/LOG.md, 2026-12-07)
    pid = tl.program_id(0)
    if pid < n_tb:
        t = pid * BLOCK_T + tl.arange(0, BLOCK_T)
        mt = t < T
        run = tl.load(ENDS + t - 1, mask=mt & (t > 0), other=0)          # the token's first slot
        el = tl.arange(0, BLOCK_E)
        local = el[:, None] * T + t[None, :]                             # (BLOCK_E, BLOCK_T) in the chunk
        for e0 in range(0, E, BLOCK_E):
            e = e0 + el
            base = T.to(tl.int64) * e0                                  # the chunk's first row
            take = tl.load(SEL + base + local, mask=(e < E)[:, None] & mt[None, :], other=0) != 0
            slot = run[None, :] + tl.cumsum(take.to(tl.int32), 0) - 1
            k_of = tl.full((BLOCK_E, BLOCK_T), -1, tl.int32)             # the k at which t chose e, or -1
            for k in tl.static_range(K):
                ik = tl.load(IDX + t.to(tl.int64) * K + k, mask=mt, other=-1).to(tl.int32)
                k_of = tl.where(ik[None, :] == e[:, None], k, k_of)
            chosen = k_of >= 0
            g_src = t[None, :].to(tl.int64) * K + k_of
            gate = tl.load(G + g_src, mask=take & chosen, other=0.0)
            score = tl.load(S + base + local, mask=take & ~chosen, other=0.0)
            tl.store(PT + slot, tl.broadcast_to(t[None, :], (BLOCK_E, BLOCK_T)).to(tl.int64), mask=take)
            tl.store(PE + slot, tl.broadcast_to(e[:, None], (BLOCK_E, BLOCK_T)).to(tl.int64), mask=take)
            tl.store(PS + slot, tl.where(chosen, gate, score), mask=take)
            tl.store(SRC + slot, tl.where(chosen, g_src, T.to(tl.int64) * K + base + local), mask=take)
            run += tl.sum(take.to(tl.int32), axis=0)
    else:
        r = (pid - n_tb).to(tl.int64) * BLOCK_F + tl.arange(0, BLOCK_F)
        m = (r < R_MAX) & (r >= tl.load(ENDS + T - 1))
        unused = tl.zeros((BLOCK_F,), dtype=tl.int64)
        tl.store(PT + r, unused + T, mask=m)
        tl.store(PE + r, unused + E, mask=m)
        tl.store(PS + r, unused.to(tl.float32), mask=m)
        tl.store(SRC + r, unused - 1, mask=m)


@triton.jit
def _round_pairs_bwd_kernel(SRC, DPS, DG, DS, TK, R_MAX,   # the pairs' sources and score gradients (R_MAX,);
                            BLOCK: tl.constexpr):          # out, zeroed before: dgates (T*K,), dscores (E*T,)
    # each source appears once in the list (a pair list has no duplicate pairs): no atomics
    r = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = r < R_MAX
    src = tl.load(SRC + r, mask=m, other=-1)
    d = tl.load(DPS + r, mask=m, other=0.0)
    tl.store(DG + src, d, mask=m & (src >= 0) & (src < TK))
    tl.store(DS + (src - TK), d, mask=m & (src >= TK))


def round_capacity(T, E, K, tile, mode):
    """R_max, the pair list's length: the most that mode can select (moe.round_tokens)."""
    k_add = min({"up": tile - 1, "down": 0}.get(mode, tile // 2), T)
    return min(T * E, T * K + E * k_add)


# _round_pairs_kernel's tile (tokens, experts a step) and warps: 8 elements a thread keep its registers
# few (ptxas for sm_90a: 140 and no spills at 32 x 8 on one warp, 220 at 16 a thread; the first form's
# (E, 32) tile, 255 and 752 bytes of spills); 32 x 8 on one warp was among the fastest of eight settings
# on an H100. ROUND_FILL_BLOCK: the unused slots a program marks, and the pair scores a program of the
# backward hands back. ROUND_SELECT_BLOCK: the select reads a row of T scores five times, this many at a
# time on a warp per 512: 8192 on 16 warps ran 54 us a layer at T = 16384, E = 128 (2048 on 4: 78)
# (docs/LOG.md, 2026-12-07)
ROUND_PAIRS_T, ROUND_PAIRS_E, ROUND_PAIRS_WARPS, ROUND_FILL_BLOCK = 32, 8, 1, 1024
ROUND_SELECT_BLOCK = 8192


def _round_select_launch(T):
    """The select's block of tokens and its warps for T tokens."""
    block_t = min(ROUND_SELECT_BLOCK, next_pow2(T))
    return block_t, max(4, block_t // 512)


def round_pairs_impl(idx: torch.Tensor, gates: torch.Tensor, scores: torch.Tensor, chosen: torch.Tensor,
                     choices: torch.Tensor, tile: int, mode: str) -> tuple[(torch.Tensor,) * 6]:
    """What round_pairs returns, then the scores' sources (R_max,) int64 for backward."""
    T, K = idx.shape
    E, dev = scores.shape[0], scores.device
    R_max = round_capacity(T, E, K, tile, mode)
    sel = torch.empty(E, T, dtype=torch.bool, device=dev)
    load = torch.empty(3, E, dtype=torch.int64, device=dev)
    block_t, warps = _round_select_launch(T)
    _round_select_kernel[(E,)](scores, chosen.view(torch.int8), choices, sel.view(torch.int8), load, T, E, tile,
                               MODE=ROUND_MODES[mode], BLOCK_T=block_t, num_warps=warps)
    ends = torch.cumsum(sel.sum(0, dtype=torch.int32), 0, dtype=torch.int32)
    i64 = dict(dtype=torch.int64, device=dev)
    pair_tok, pair_exp, src = torch.empty(R_max, **i64), torch.empty(R_max, **i64), torch.empty(R_max, **i64)
    pair_score = torch.empty(R_max, device=dev)
    n_tb = cdiv(T, ROUND_PAIRS_T)
    _round_pairs_kernel[(n_tb + cdiv(R_max, ROUND_FILL_BLOCK),)](
        sel.view(torch.int8), scores, idx, gates, ends, pair_tok, pair_exp, pair_score, src, T, E, R_max, n_tb, K=K,
        BLOCK_T=ROUND_PAIRS_T, BLOCK_E=min(ROUND_PAIRS_E, next_pow2(E)), BLOCK_F=ROUND_FILL_BLOCK,
        num_warps=ROUND_PAIRS_WARPS)
    return pair_tok, pair_exp, pair_score, sel, load, src


def round_pairs_bwd_impl(src: torch.Tensor, dscore: torch.Tensor, T: int, K: int,
                         E: int) -> tuple[torch.Tensor, torch.Tensor]:
    """dgates (T, K) and dscores (E, T) fp32 from the pair scores' gradient (R_max,)."""
    dg = torch.zeros(T, K, device=src.device)
    ds = torch.zeros(E, T, device=src.device)
    R_max = src.numel()
    _round_pairs_bwd_kernel[(cdiv(R_max, ROUND_FILL_BLOCK),)](src, dscore, dg, ds, T * K, R_max,
                                                             BLOCK=ROUND_FILL_BLOCK)
    return dg, ds


TMA = None  # operands that are not gathered, by TMA: None = where the device has it and it pays; True/False force it
# Each program builds its descriptors on the device (a global write and a fence) before its main loop.
# On the H200 the M-tiled GEMMs repaid that only on reductions of 4096 (64 steps): 0-17% faster there,
# and up to 27% slower on 256-2048; the weight gradients, whose loops run over an expert's rows, gained
# 1-12% at every paper shape (docs/LOG.md, 2026-12-01)
TMA_MIN_K = 4096


def _scratch(size, alignment, stream):
    # device-side tensor descriptors live in a global scratch buffer that Triton asks for at launch
    return torch.empty(size, dtype=torch.int8, device="cuda")


def _tma_api():
    # device-side descriptors came with Triton 3.4 (tl.make_tensor_descriptor, triton.set_allocator);
    # an older one (no torch that moe.py accepts pins one, but a CPU torch takes any) keeps the pointer path
    return hasattr(tl, "make_tensor_descriptor") and hasattr(triton, "set_allocator")


def _set_allocator():
    # the allocator is a context variable, unset in autograd's backward thread: set ours where none is
    # set. Which allocator is set is Triton's private state; where it cannot be read, set ours
    try:
        from triton.runtime import _allocation
        unset = isinstance(_allocation._allocator.get(), _allocation.NullAllocator)
    except (ImportError, AttributeError):
        unset = True
    if unset:
        triton.set_allocator(_scratch)


@functools.lru_cache(maxsize=None)
def _device(index):
    """(whether CUDA device `index` has TMA, its SM count, its compute capability's major), asked once:
    torch's device queries cost ~5 us of host time each, and the launches ask at every call"""
    props = torch.cuda.get_device_properties(index)
    return torch.version.hip is None and props.major >= 9, props.multi_processor_count, props.major


def _use_tma(*ts, col=0, k=None):
    """Whether the expert GEMMs read the operands ts (the weights and the rows in grouped order, never
    the gathered rows) through device-side TMA descriptors (tl.make_tensor_descriptor). TMA needs an
    NVIDIA GPU of compute capability >= 9, a 16-byte aligned base and strides and a unit last stride;
    col, a column where a block starts that is not a multiple of the tiles (n, where up's half of h
    starts), must be 16-byte aligned too. k: an M-tiled kernel's reduction length, which must reach
    TMA_MIN_K. By default only 16-bit operands take it: fp32 runs FMA dots, not wgmma. Elsewhere
    (sm_80, AMD, fp32, short reductions) every operand comes by pointer loads, the portable path."""
    fits = col * ts[0].element_size() % 16 == 0 and all(t.stride(-1) == 1 and t.data_ptr() % 16 == 0
               and all(st * t.element_size() % 16 == 0 for st in t.stride()[:-1]) for t in ts)
    if TMA and not _tma_api():
        raise ValueError(f"sonic_kernels.TMA=True, but Triton {triton.__version__} has no device-side tensor "
                         f"descriptors (Triton 3.4 or newer): set sonic_kernels.TMA = None")
    use = TMA if TMA is not None else (
        not INTERPRET and _tma_api() and (k is None or k >= TMA_MIN_K)
        and all(t.is_cuda and t.element_size() == 2 for t in ts) and _device(ts[0].device.index)[0] and fits)
    if use and not fits:
        raise ValueError(f"sonic_kernels.TMA=True, but an operand of shape {[tuple(t.shape) for t in ts]} does not meet "
                         f"TMA's rules (unit last stride, 16-byte aligned base, strides and column offsets): "
                         f"set sonic_kernels.TMA = None")
    if use and ts[0].is_cuda:
        _set_allocator()
    return bool(use)


# -----------------------------------------------------------------------------
# Forward: up-projection with SwiGLU, down projection, gather-sum. The GEMM grids run over
# (M tile, N tile) with the N tile fastest, so the programs that share one gathered block of rows
# run together and find it in L2. An M tile lies inside one expert's segment of the grouped order;
# Routing's tile map says which (_tile_rows).

@triton.jit
def _real_tiles(offsets, E, BLOCK_M: tl.constexpr, NB: tl.constexpr):
    # how many of the tile map's tiles belong to an expert: the map's surplus slots (the static
    # bound's) all come after them, so a persistent program's loop ends here, not at the bound
    ex = tl.arange(0, NB)
    lo = tl.load(offsets + ex, mask=ex < E, other=0)
    hi = tl.load(offsets + ex + 1, mask=ex < E, other=0)
    return tl.sum((hi - lo + BLOCK_M - 1) // BLOCK_M, axis=0)


def _n_programs(device, work):
    # a persistent kernel's grid: one program per SM (its tiles fill an SM's shared memory), fewer
    # when there is less work; the interpreter runs a few, so its tests still cover the loop
    if INTERPRET or device.type != "cuda":
        return max(1, min(3, work))
    return max(1, min(_device(device.index)[1], work))


@triton.autotune(
    configs=_configs([(dict(BLOCK_N=128, BLOCK_K=64), 8, 4), (dict(BLOCK_N=128, BLOCK_K=32), 8, 5)],
                     dict(BLOCK_N=32, BLOCK_K=32)),
    key=["N", "D", "USE_TMA"],
    do_bench=_timed,
)
@triton.jit
def _up_swiglu_kernel(
    X, W1, H, A, gather_idx, tile_expert, tile_row0, offsets,   # X (T, d), W1 (E, d, 2n), H (R, 2n), A (R, n)
    N, D, E,                                                  # N = n, D = d
    stride_xt, stride_we, stride_wk, stride_hr, stride_ar,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
    USE_TMA: tl.constexpr,
):
    num_n = tl.cdiv(N, BLOCK_N)
    pid_m, pid_n = tl.program_id(0) // num_n, tl.program_id(0) % num_n
    e, row0, row_end = _tile_rows(tile_expert, tile_row0, offsets, pid_m, E)
    if e >= E:  # surplus program of the static grid
        return
    rows = row0 + tl.arange(0, BLOCK_M)
    mask_m = rows < row_end
    # the fused gather: the source token of each row; masked rows read token 0, a valid row
    tok = tl.load(gather_idx + rows, mask=mask_m, other=0).to(tl.int64)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = cols < N
    ks = tl.arange(0, BLOCK_K)
    x_ptrs = X + tok[:, None] * stride_xt + ks[None, :]
    if USE_TMA:
        # the 3-D descriptor zero-fills past d and 2n, never reading the next expert. Where BLOCK_N does
        # not divide n, the last gate tile runs on into up columns: those columns of h and a are
        # masked at the stores, and a column of a product depends on that column alone
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
    # SwiGLU epilogue on h as stored, so that backward's recomputation of a is exact
    g = acc_g.to(H.dtype.element_ty)
    u = acc_u.to(H.dtype.element_ty)
    gf, uf = g.to(tl.float32), u.to(tl.float32)
    a = gf * tl.sigmoid(gf) * uf
    mask = mask_m[:, None] & mask_n[None, :]
    rows64 = rows.to(tl.int64)
    h_ptrs = H + rows64[:, None] * stride_hr + cols[None, :]
    tl.store(h_ptrs, g, mask=mask)
    tl.store(h_ptrs + N, u, mask=mask)
    tl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask)


def up_swiglu(x, w1, r: Routing):
    """h = X[gather] @ W1_e (R, 2n), saved for backward, and a = silu(h_gate) * h_up (R, n)."""
    R, (E, d, n2) = r.gather_idx.numel(), w1.shape
    n = n2 // 2
    h = torch.empty(R, 2 * n, device=x.device, dtype=x.dtype)
    a = torch.empty(R, n, device=x.device, dtype=x.dtype)
    if _use_hopper_up(x, w1):
        _up_hopper(x, w1, r, h, a)
        return h, a
    tiles = r.tile_expert.numel()
    grid = lambda META: (tiles * cdiv(n, META["BLOCK_N"]),)
    _up_swiglu_kernel[grid](x, w1, h, a, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, n, d, E,
                            x.stride(0), w1.stride(0), w1.stride(1), h.stride(0), a.stride(0),
                            BLOCK_M=BLOCK_M, DOT_PREC=_dot_prec(x.dtype), USE_TMA=_use_tma(w1, col=n, k=d))
    return h, a


def _fp32_tile(configs, named_args, **kwargs):
    # exact fp32 runs FMA dots, not tensor cores: a 128 x 256 fp32 tile spills ~18 KB a thread and, read by
    # TMA, overflows shared memory (tests/test_sm90.py's compile for sm_90), so fp32 takes one small tile
    if named_args["Am"].element_size() == 4:
        return [triton.Config(dict(BLOCK_N=128, BLOCK_K=32), num_warps=8, num_stages=2)]
    return configs


@triton.autotune(
    # 128 x 256 x 64 tiles on 8 warps won at the four shapes measured, 3 or 4 stages by shape and
    # operand; 128 x 256 x 32 and 128 x 128 x 64 or x 128 lost by 3-26% (H200, persistent with TMA;
    # docs/LOG.md, 2026-12-01). Those two need 104-152 KB of shared memory, more than the 99 KB a
    # program gets on sm_86, sm_89 and sm_120 (A10, L4, L40S, RTX 3090 to 5090), where they fail at
    # launch and the autotuner takes the third, 128 x 256 x 32 in 4 stages (80 KB; tests/test_sm90.py)
    configs=_configs([(dict(BLOCK_N=256, BLOCK_K=64), 8, 3), (dict(BLOCK_N=256, BLOCK_K=64), 8, 4),
                      (dict(BLOCK_N=256, BLOCK_K=32), 8, 4)],
                     dict(BLOCK_N=32, BLOCK_K=32)),
    key=["N", "KD", "USE_TMA"],
    do_bench=_timed,
    prune_configs_by=dict(early_config_prune=_fp32_tile),
)
@triton.jit
def _grouped_mm_kernel(
    Am, B, C, tile_expert, tile_row0, offsets,   # Am (R, KD) grouped order, B_e (KD, N) by strides, C (R, N)
    R, N, KD, E, n_prog,
    stride_ar, stride_be, stride_bk, stride_bn, stride_cr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
    USE_TMA: tl.constexpr, TRANS_B: tl.constexpr,   # TRANS_B: B is stored (E, N, KD)
    NB: tl.constexpr,                               # a power of 2 > E
):
    # Persistent: n_prog programs step through the (M tile, N tile) work items, N fastest. The
    # reductions are short (KD = n or 2n, 4-16 steps), so a program a tile spends much of its life
    # filling the pipeline and storing its tile; in one loop over items and k steps (flatten) the
    # next item's loads are issued while this one's tile is stored, and a program builds its TMA
    # descriptors once, not once a tile
    num_n = tl.cdiv(N, BLOCK_N)
    n_work = _real_tiles(offsets, E, BLOCK_M, NB) * num_n
    ks = tl.arange(0, BLOCK_K)
    if USE_TMA:
        # rows past the segment's end read the next expert's rows (zeros past R): their results are
        # masked at the store. B's 3-D descriptor zero-fills past KD and N
        a_desc = tl.make_tensor_descriptor(Am, shape=[R, KD], strides=[stride_ar, 1], block_shape=[BLOCK_M, BLOCK_K])
        if TRANS_B:
            b_desc = tl.make_tensor_descriptor(B, shape=[E, N, KD], strides=[stride_be, stride_bn, 1],
                                               block_shape=[1, BLOCK_N, BLOCK_K])
        else:
            b_desc = tl.make_tensor_descriptor(B, shape=[E, KD, N], strides=[stride_be, stride_bk, 1],
                                               block_shape=[1, BLOCK_K, BLOCK_N])
    # the epilogue finds its item by its own counter: a value that both the loads (pipelined ahead)
    # and the store use would tie the store to the next item's prologue
    item_c = tl.program_id(0) - n_prog
    for item in tl.range(tl.program_id(0), n_work, n_prog, flatten=True):
        tile, pid_n = item // num_n, item % num_n
        e = tl.load(tile_expert + tile)
        row0 = tl.load(tile_row0 + tile)
        if USE_TMA:
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k0 in range(0, KD, BLOCK_K):
                a = a_desc.load([row0, k0])
                if TRANS_B:
                    b = tl.trans(b_desc.load([e, pid_n * BLOCK_N, k0]).reshape(BLOCK_N, BLOCK_K))
                else:
                    b = b_desc.load([e, k0, pid_n * BLOCK_N]).reshape(BLOCK_K, BLOCK_N)
                acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
        else:
            # rows past the segment read its first row (in bounds, no row mask); masked at the store
            rows = row0 + tl.arange(0, BLOCK_M)
            rows_safe = tl.where(rows < tl.load(offsets + e + 1), rows, row0).to(tl.int64)
            # columns past N read column 0 (in bounds, no column mask); masked at the store. A column
            # mask here is lost to the flattened loop's analysis, which then cannot copy B's rows
            # asynchronously (tests/test_sm90.py)
            cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
            cols = tl.max_contiguous(tl.multiple_of(tl.where(cols < N, cols, 0), BLOCK_N), BLOCK_N)
            a_ptrs = Am + rows_safe[:, None] * stride_ar + ks[None, :]
            b_ptrs = B + e.to(tl.int64) * stride_be + ks[:, None] * stride_bk + cols[None, :] * stride_bn
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k0 in range(0, KD, BLOCK_K):
                mask_k = (k0 + ks) < KD
                a = tl.load(a_ptrs, mask=mask_k[None, :], other=0.0)
                b = tl.load(b_ptrs, mask=mask_k[:, None], other=0.0)
                acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
                a_ptrs += BLOCK_K
                b_ptrs += BLOCK_K * stride_bk
        item_c += n_prog
        tile_c = item_c // num_n
        rows_c = tl.load(tile_row0 + tile_c) + tl.arange(0, BLOCK_M)
        cols_c = (item_c % num_n) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_c = (rows_c < tl.load(offsets + tl.load(tile_expert + tile_c) + 1))[:, None] & (cols_c < N)[None, :]
        c_ptrs = C + rows_c.to(tl.int64)[:, None] * stride_cr + cols_c[None, :]
        tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=mask_c)


def grouped_mm(a, b, r: Routing, trans_b=False):
    """c = a @ B_e on each expert's segment of rows: a (R, KD) in grouped order; b (E, KD, N), or
    with trans_b b (E, N, KD), read transposed through its strides (never copied). c (R, N). sm_90
    computes it by the warp-specialised kernel (HOPPER_GROUPED), elsewhere _grouped_mm_kernel."""
    R, KD = a.shape
    E, N = b.shape[0], b.shape[1] if trans_b else b.shape[2]
    stride_bk, stride_bn = (b.stride(2), b.stride(1)) if trans_b else (b.stride(1), b.stride(2))
    c = torch.empty(R, N, device=a.device, dtype=a.dtype)
    if _use_hopper_grouped(a, b, c, trans_b):
        _grouped_mm_hopper(a, b, c, r, trans_b)
        return c
    n_prog = _n_programs(a.device, r.tile_expert.numel() * cdiv(N, 128))
    _grouped_mm_kernel[(n_prog,)](a, b, c, r.tile_expert, r.tile_row0, r.offsets, R, N, KD, E, n_prog,
                                  a.stride(0), b.stride(0), stride_bk, stride_bn, c.stride(0),
                                  BLOCK_M=BLOCK_M, DOT_PREC=_dot_prec(a.dtype), USE_TMA=_use_tma(a, b),
                                  TRANS_B=trans_b, NB=next_pow2(E + 1))
    return c


@triton.jit
def _gather_sum_kernel(
    Y, S, rev, tok_offsets, O,        # Y (R, D) grouped order, S (R,) pair scores, O (T, D)
    D,
    stride_yr, stride_ot,
    HAS_S: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # o[t] = sum_{p in t's pairs} s_p * Y[rev[p]]: each output row is owned by one program, so the
    # sum needs no atomics and is deterministic; it accumulates in fp32
    t = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < D
    start = tl.load(tok_offsets + t)
    end = tl.load(tok_offsets + t + 1)
    acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for p in range(start, end):
        r = tl.load(rev + p).to(tl.int64)
        y = tl.load(Y + r * stride_yr + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_S:
            y = y * tl.load(S + p)
        acc += y
    tl.store(O + t.to(tl.int64) * stride_ot + cols, acc.to(O.dtype.element_ty), mask=mask)


def gather_sum(y, r: Routing, score=None):
    """o (T, D): o[t] = sum over t's pairs p of score[p] * y[rev[p]], in fp32. y (R, D) in grouped
    order; score (R,) fp32 in token order, or None for a plain sum."""
    T, D = r.tok_offsets.numel() - 1, y.shape[1]
    out = torch.empty(T, D, device=y.device, dtype=y.dtype)
    bd = min(1024, next_pow2(D))
    _gather_sum_kernel[(T, cdiv(D, bd))](y, y if score is None else score, r.rev, r.tok_offsets, out, D,
                                         y.stride(0), out.stride(0), HAS_S=score is not None, BLOCK_D=bd)
    return out


def moe_fwd_impl(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, pair_tok: Optional[torch.Tensor],
                 pair_exp: torch.Tensor, pair_score: torch.Tensor, master_w1: Optional[torch.Tensor] = None,
                 master_w2: Optional[torch.Tensor] = None) -> tuple[(torch.Tensor,) * 9]:
    """The layer's forward: returns out (T, d), then what backward needs: h and the Routing fields.
    master_w1 / master_w2: the fp32 weights that w1 / w2 are copies of, if any; the forward does not read
    them, and backward gives them the weight gradients, in fp32 (moe_experts)."""
    x, w1, w2 = x.contiguous(), w1.contiguous(), w2.contiguous()
    score = pair_score.float().contiguous()                 # (R,) token order, for the gather-sum
    r = routing_metadata(pair_tok, pair_exp, score, x.shape[0], w2.shape[0])
    h, a = up_swiglu(x, w1, r)                              # h (R, 2n) saved; a (R, n) transient
    y = grouped_mm(a, w2, r)                                # (R, d) grouped order, transient
    del a
    out = gather_sum(y, r, score)                           # (T, d)
    return (out, h, *r)


# -----------------------------------------------------------------------------
# Backward: the dA' kernel with its dS / dH / A' epilogue, the weight gradients, and dX by the
# forward's grouped GEMM and gather-sum.

@triton.jit
def _down_bwd_epilogue(acc, s, rows64, mask_m, cols, N, H, dH, Ap, stride_hr, stride_ar, h_desc, row0, col0,
                       USE_TMA: tl.constexpr):
    # recompute a from h (a is never saved), write dH and A', return this block's share of dS.
    # Every output is formed before the first store. The stores may alias as far as the compiler
    # knows, so a store between two results keeps whole fp32 tiles alive across it; this order cut
    # the spills of the fast programs from 74-80 registers to 14-16 (docs/LOG.md, 2026-11-29)
    mask = mask_m[:, None] & (cols < N)[None, :]
    if USE_TMA:
        # rows past the segment read the next expert's h, and gate columns past n read up columns:
        # the stores (dS's too) mask those rows and columns, and acc is zero past n (W2's descriptor
        # zero-fills), so no row sum takes anything from them
        g = h_desc.load([row0, col0]).to(tl.float32)
        u = h_desc.load([row0, N + col0]).to(tl.float32)
    else:
        h_ptrs = H + rows64[:, None] * stride_hr + cols[None, :]
        g = tl.load(h_ptrs, mask=mask, other=0.0).to(tl.float32)
        u = tl.load(h_ptrs + N, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    silu = g * sig
    a = silu * u
    ds = tl.sum(acc * a, axis=1)                              # dS = <dO, y> = <dA', a>, this block's share
    da = acc * s[:, None]                                     # dL/da = s * dA'
    ap = (a * s[:, None]).to(Ap.dtype.element_ty)
    d_up = (da * silu).to(dH.dtype.element_ty)
    d_gate = (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty)  # d silu / dg = sig (1 + g (1 - sig))
    tl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], ap, mask=mask)
    dh_ptrs = dH + rows64[:, None] * stride_hr + cols[None, :]
    tl.store(dh_ptrs, d_gate, mask=mask)
    tl.store(dh_ptrs + N, d_up, mask=mask)
    return ds


@triton.autotune(
    configs=_configs([(dict(SPLIT_M=2, NACC=2, BLOCK_N=64, BLOCK_K=64), 4, 4),
                      (dict(SPLIT_M=2, NACC=2, BLOCK_N=128, BLOCK_K=64), 8, 4),
                      (dict(SPLIT_M=1, NACC=2, BLOCK_N=64, BLOCK_K=64), 8, 5)],
                     dict(SPLIT_M=2, NACC=2, BLOCK_N=16, BLOCK_K=32)),
    key=["N", "D", "USE_TMA"],
    do_bench=_timed,
    reset_to_zero=["dS_part"],  # configs differ in N tiles; rows a config does not write must stay 0
)
@triton.jit
def _down_bwd_kernel(
    dO, W2, H, S, gather_idx, tile_expert, tile_row0, offsets,   # dO (T, d), W2 (E, n, d), H (R, 2n), S (R,) row scores
    dH, Ap, dS_part,                                             # out: dH (R, 2n), A' (R, n), dS_part (n_tiles, R) fp32
    N, D, E, R,
    stride_ot, stride_we, stride_wn, stride_wd, stride_hr, stride_ar,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
    SPLIT_M: tl.constexpr, NACC: tl.constexpr, USE_TMA: tl.constexpr,
):
    # A program covers BLOCK_M // SPLIT_M rows of one M tile and NACC * BLOCK_N columns, as NACC
    # accumulators that share each gathered dO block. The epilogue holds h, a and dA' at once, so
    # one 128 x 128 accumulator spills heavily (390+ registers), while 128 x 64 re-reads the
    # gathered dO once per 64 columns; two accumulators, on 64-row programs for narrow d, ran the
    # 7B shape 1.2x faster than one 128 x 64 (docs/LOG.md, 2026-11-29).
    SUB_M: tl.constexpr = BLOCK_M // SPLIT_M
    num_n = tl.cdiv(N, NACC * BLOCK_N)
    pid_m, pid_n = tl.program_id(0) // num_n, tl.program_id(0) % num_n
    tile = pid_m // SPLIT_M
    e, row0, row_end = _tile_rows(tile_expert, tile_row0, offsets, tile, E)
    if e >= E:
        return
    row0 += (pid_m % SPLIT_M) * SUB_M
    if row0 >= row_end:  # the empty lower half of an expert's last tile
        return
    rows = row0 + tl.arange(0, SUB_M)
    mask_m = rows < row_end
    tok = tl.load(gather_idx + rows, mask=mask_m, other=0).to(tl.int64)
    cols = pid_n * NACC * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    # dA' = dO[gather] @ W2_e^T; W2_e^T (d, n) is read through strides, never transposed in memory
    o_ptrs = dO + tok[:, None] * stride_ot + ks[None, :]
    col0 = pid_n * NACC * BLOCK_N
    if USE_TMA:
        # W2_e^T blocks are read as (BLOCK_N, BLOCK_K) blocks of W2_e (n, d) and transposed in shared
        # memory; the 3-D descriptor zero-fills past n and d
        w_desc = tl.make_tensor_descriptor(W2, shape=[E, N, D], strides=[stride_we, stride_wn, 1],
                                           block_shape=[1, BLOCK_N, BLOCK_K])
        h_desc = tl.make_tensor_descriptor(H, shape=[R, 2 * N], strides=[stride_hr, 1], block_shape=[SUB_M, BLOCK_N])
    else:
        w_ptrs = W2 + e.to(tl.int64) * stride_we + ks[:, None] * stride_wd + cols[None, :] * stride_wn
        h_desc = H
    mask_n0, mask_n1 = cols < N, (cols + BLOCK_N) < N
    acc0 = tl.zeros((SUB_M, BLOCK_N), dtype=tl.float32)
    acc1 = tl.zeros((SUB_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, D, BLOCK_K):
        mask_k = (k0 + ks) < D
        o = tl.load(o_ptrs, mask=mask_k[None, :], other=0.0)
        if USE_TMA:
            w = tl.trans(w_desc.load([e, col0, k0]).reshape(BLOCK_N, BLOCK_K))
        else:
            w = tl.load(w_ptrs, mask=mask_k[:, None] & mask_n0[None, :], other=0.0)
        acc0 = tl.dot(o, w, acc0, input_precision=DOT_PREC)
        if NACC == 2:
            if USE_TMA:
                w = tl.trans(w_desc.load([e, col0 + BLOCK_N, k0]).reshape(BLOCK_N, BLOCK_K))
            else:
                w = tl.load(w_ptrs + BLOCK_N * stride_wn, mask=mask_k[:, None] & mask_n1[None, :], other=0.0)
            acc1 = tl.dot(o, w, acc1, input_precision=DOT_PREC)
        o_ptrs += BLOCK_K
        if not USE_TMA:
            w_ptrs += BLOCK_K * stride_wd
    rows64 = tl.where(mask_m, rows, row0).to(tl.int64)
    s = tl.load(S + rows64, mask=mask_m, other=0.0)
    ds = _down_bwd_epilogue(acc0, s, rows64, mask_m, cols, N, H, dH, Ap, stride_hr, stride_ar,
                            h_desc, row0, col0, USE_TMA)
    if NACC == 2:
        ds += _down_bwd_epilogue(acc1, s, rows64, mask_m, cols + BLOCK_N, N, H, dH, Ap, stride_hr, stride_ar,
                                 h_desc, row0, col0 + BLOCK_N, USE_TMA)
    # this program's share of the row sum; _pair_dscore_kernel sums the N programs' shares
    tl.store(dS_part + pid_n.to(tl.int64) * R + rows64, ds, mask=mask_m)


@triton.jit
def _pair_dscore_kernel(dS_part, rev, offsets, dscore, R, P, E, BLOCK: tl.constexpr):
    # dscore[p] = sum over the P parts of dS_part[., rev[p]]: the parts' sum and the return to pair order
    # in one launch, where torch's sum, the index's int64 cast and the index were three (a backward at the
    # small shapes waits on the host). An unused slot's row lies past every tile, so no part of it is
    # written: it gets 0, and the parts need no zero fill where every tile row's parts are written
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = p < R
    row = tl.load(rev + p, mask=m, other=0).to(tl.int64)
    real = m & (row < tl.load(offsets + E).to(tl.int64))
    acc = tl.zeros([BLOCK], tl.float32)
    ptrs = dS_part + row                           # a part a step: the pointer moves on by R
    for _ in range(0, P):
        acc += tl.load(ptrs, mask=real, other=0.0)
        ptrs += R
    tl.store(dscore + p, acc, mask=m)


def down_bwd(dout, w2, h, r: Routing):
    """dA' = dO[gather] @ W2_e^T and its epilogue. dout (T, d), h (R, 2n). Returns dH (R, 2n) and
    A' = s * a (R, n) in grouped order, and dS (R,) fp32 in pair order (the pair scores' gradient)."""
    R, (E, n, d) = h.shape[0], w2.shape
    dH = torch.empty(R, 2 * n, device=h.device, dtype=h.dtype)
    Ap = torch.empty(R, n, device=h.device, dtype=h.dtype)
    if _use_hopper_down_bwd(dout, w2, h):
        dS_part = _down_bwd_hopper(dout, w2, h, r, dH, Ap)
    else:
        # configs differ in their N tiles: the parts a config does not write must read 0
        dS_part = torch.zeros(cdiv(n, 32), R, device=h.device, dtype=torch.float32)
        tiles = r.tile_expert.numel()
        grid = lambda META: (tiles * META["SPLIT_M"] * cdiv(n, META["NACC"] * META["BLOCK_N"]),)
        _down_bwd_kernel[grid](dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets,
                               dH, Ap, dS_part, n, d, E, R, dout.stride(0), w2.stride(0), w2.stride(1), w2.stride(2),
                               h.stride(0), Ap.stride(0), BLOCK_M=BLOCK_M, DOT_PREC=_dot_prec(h.dtype),
                               USE_TMA=_use_tma(w2, h, col=n, k=d))
    dS = torch.empty(R, device=h.device, dtype=torch.float32)
    _pair_dscore_kernel[(cdiv(R, 1024),)](dS_part, r.rev, r.offsets, dS, R, dS_part.shape[0], E, BLOCK=1024)
    return dH, Ap, dS


@triton.autotune(
    configs=_configs([(dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64), 4, 2), (dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64), 4, 3),
                      (dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32), 4, 4)],
                     dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=32)),
    key=["M", "N", "rows_hint", "USE_TMA"],
    do_bench=_timed,
)
@triton.jit
def _wgrad_kernel(
    Am, B, C, gather_a, gather_b, offsets,   # C_e (M, N) = sum over e's rows r of Am[ia(r)]^T B[ib(r)]
    M, N, rows_hint,                         # rows_hint: mean rows per expert as a power of 2, a tuning key only
    stride_ar, stride_br, stride_ce, stride_cm,
    GATHER_A: tl.constexpr, GATHER_B: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PREC: tl.constexpr,
    USE_TMA: tl.constexpr,   # the operand that is not gathered comes by TMA (needs exactly one gathered)
    SQ=None,   # None, or fp32, a slot a program: its tile's sum of squares (GradSquares)
):
    # a grouped GEMM whose reduction runs over one expert's segment of rows (varlen-K); operands
    # come from the grouped order or, through an index, straight from the token-order tensors.
    # The best pipeline depth depends on the loop's length, not only on M and N: with ~256-512 rows
    # an expert (4-8 steps) two stages ran 10-13% faster than three (docs/LOG.md, 2026-11-29), so the
    # autotuner keys on the rows too
    num_m, num_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
    pid = tl.program_id(0)
    e = pid // (num_m * num_n)
    pid_m = (pid // num_n) % num_m
    pid_n = pid % num_n
    start = tl.load(offsets + e)
    end = tl.load(offsets + e + 1)
    cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_cm, mask_cn = cm < M, cn < N
    ks = tl.arange(0, BLOCK_K)
    if USE_TMA:
        # the descriptor ends at the segment's end, so that TMA reads zeros past it: the gathered
        # operand's rows there are masked to zero too, but 0 * inf is NaN, and past the last expert lie
        # the unused slots (token rounding's), whose rows no kernel writes
        rows_e = tl.maximum(end, 1)
        if GATHER_A:
            b_desc = tl.make_tensor_descriptor(B, shape=[rows_e, N], strides=[stride_br, 1], block_shape=[BLOCK_K, BLOCK_N])
        else:
            a_desc = tl.make_tensor_descriptor(Am, shape=[rows_e, M], strides=[stride_ar, 1], block_shape=[BLOCK_K, BLOCK_M])
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r0 in range(start, end, BLOCK_K):
        rows = r0 + ks
        mask_r = rows < end
        if GATHER_A:
            ia = tl.load(gather_a + rows, mask=mask_r, other=0).to(tl.int64)
        else:
            ia = rows.to(tl.int64)
        if GATHER_B:
            ib = tl.load(gather_b + rows, mask=mask_r, other=0).to(tl.int64)
        else:
            ib = rows.to(tl.int64)
        if USE_TMA and not GATHER_A:
            a = a_desc.load([r0, pid_m * BLOCK_M])
        else:
            a = tl.load(Am + ia[:, None] * stride_ar + cm[None, :], mask=mask_r[:, None] & mask_cm[None, :], other=0.0)
        if USE_TMA and GATHER_A:
            b = b_desc.load([r0, pid_n * BLOCK_N])
        else:
            b = tl.load(B + ib[:, None] * stride_br + cn[None, :], mask=mask_r[:, None] & mask_cn[None, :], other=0.0)
        acc = tl.dot(tl.trans(a), b, acc, input_precision=DOT_PREC)
    # an expert with no rows writes zeros, which is its true gradient
    c_ptrs = C + e.to(tl.int64) * stride_ce + cm[:, None].to(tl.int64) * stride_cm + cn[None, :]
    tl.store(c_ptrs, acc.to(C.dtype.element_ty), mask=mask_cm[:, None] & mask_cn[None, :])
    # past M and N, acc is zeros: the loads there are masked (or zero-filled by TMA). One sum over the
    # tile: a sum of the rows' sums did not compile for sm_100 under Triton 3.6 and 3.7.1 (a slice of a
    # slice of the tensor-memory accumulator's layout; docs/LOG.md, 2026-12-04)
    if SQ is not None:
        tl.store(SQ + pid, tl.sum(acc * acc))


# -----------------------------------------------------------------------------
# The weight gradients on Hopper: one kernel warp-specialised in Gluon. The Triton kernel above runs
# 128 x 128 tiles (its gathered operand's pointer loads take the registers a larger tile would need),
# and at that size L2's bandwidth sets its pace: at 30B a layer's dW1 reads 32 GB from L2 (docs/LOG.md,
# 2026-12-01). Here, in each program (one per SM):
#   a producer warpgroup (few registers) loads step after step into a ring of STAGES buffers: the
#     gathered rows by cp.async, 64 x 128, their indices read a step ahead; the operand in grouped
#     order by TMA, 64 x 256, in two halves;
#   two consumer warpgroups (many registers) each multiply the shared gathered block by one half, so
#     an output tile is 128 x 256 (dW1) or 256 x 128 (dW2), and L2 is read a quarter less per FLOP.
# mbarriers hand each buffer over: ready_t (the TMA bytes landed), ready_c (every producer thread's
# copies landed), empty (both consumers' MMAs on it are done). wgmma is Hopper's own instruction, so
# this runs on sm_90 only; every other device, and the CPU interpreter, runs _wgrad_kernel.
# In h200_moe's training step it took 7.9 ms a step against _wgrad_kernel's 11.5 (docs/LOG.md,
# 2026-12-01). Its programs walk a fixed share of the tiles each, so the order of the tiles matters:
# in expert order, under training's skewed routing (the busiest expert gets several times the mean
# load), the program that drew a heavy expert's tiles finished last, and the kernel lost to the
# one-tile programs of _wgrad_kernel that the hardware hands to whichever SM is free. Heaviest expert
# first (_wg_tile) fixed that.
HOPPER_WGRAD = None  # None: on sm_90 where the operands allow it (_use_hopper_wgrad); False: off; True: forced


@functools.lru_cache(maxsize=None)
def _gluon_api():
    # the kernel below ran on the H200 with Triton 3.6, and compiles for sm_90 with 3.6 to 3.9
    # (tests/test_sm90.py); Gluon's API moved before 3.6 (warp_specialize's arguments), so older
    # versions keep the Triton kernel
    return gluon is not None and TRITON_VERSION >= (3, 6)


def _use_hopper(flag, name, t, ok, needs):
    """Whether a Hopper twin runs, by its flag sonic_kernels.<name>: never while it is False; with None
    (the default), where it can run: an sm_90 GPU (compute capability 9.x) for t, Triton's Gluon (3.6 or
    newer), and operands the kernel takes (ok); True forces it, and where it cannot run the error says
    what the kernel needs."""
    if flag is False:
        return False
    hopper = _gluon_api() and t.is_cuda and torch.version.hip is None and _device(t.device.index)[2] == 9
    if flag and not (ok and hopper):
        raise ValueError(f"sonic_kernels.{name}=True, but {needs}: set sonic_kernels.{name} = None (the default: "
                         f"where it can run) or False")
    return bool(flag if flag is not None else (not INTERPRET and ok and hopper))


def _rows_by_cp_async(t):
    """Whether the Hopper kernels can copy t's rows (gathered rows, h) by 16-byte cp.async. Triton proves a
    copy 16-byte aligned only from integers it marks divisible by 16 (the row stride, the columns' bound),
    so a row's length and stride must be multiples of 16 elements: at 8 it plans 2-byte copies, which
    cp.async has not, and neither Triton 3.6 nor 3.7 compiles the kernel."""
    return t.stride(-1) == 1 and t.shape[-1] % 16 == 0 and t.stride(0) % 16 == 0 and t.data_ptr() % 16 == 0


def _use_hopper_wgrad(a, b, gather_a, gather_b):
    """Whether wgrad runs _wgrad_hopper_kernel (_use_hopper): it takes exactly one operand gathered, 16-bit
    operands, TMA's rules (a 16-byte aligned base and row stride, unit last stride) on the one in
    grouped order, and rows of the gathered one that cp.async can copy (_rows_by_cp_async)."""
    t, g = (b, a) if gather_a else (a, b)
    ok = (gather_a != gather_b and a.dtype == b.dtype and a.dtype in (torch.bfloat16, torch.float16)
          and a.stride(-1) == 1 and b.stride(-1) == 1 and t.data_ptr() % 16 == 0 and t.stride(0) * t.element_size() % 16 == 0
          and _rows_by_cp_async(g))
    return _use_hopper(HOPPER_WGRAD, "HOPPER_WGRAD", a, ok, "the Hopper weight-gradient kernel needs an sm_90 GPU, "
                       "Triton 3.6 or newer with Gluon, exactly one gathered operand, 16-bit operands, TMA's alignment "
                       "and d a multiple of 16")


if gluon is not None:
    # Gluon renamed its copies after Triton 3.6 (async_copy_global_to_shared became async_load)
    _tma_load = getattr(gl_tma, "async_load", None) or gl_tma.async_copy_global_to_shared
    _cp_async = getattr(gl_async_copy, "async_load", None) or gl_async_copy.async_copy_global_to_shared
    _tma_store = getattr(gl_tma, "async_store", None) or gl_tma.async_copy_shared_to_global
    _cta_barrier = getattr(gl, "thread_barrier", None) or gl.barrier   # renamed after Triton 3.6
    WG_PRODUCER_WARPS = gl.constexpr(4)

    @gluon.jit
    def _ws_ring(STAGES: gl.constexpr):
        # a ring stage's barriers: ready_t when its TMA bytes have landed, ready_c when every producer
        # thread's cp.async copies have, empty when both consumers are done with it
        ready_t = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        ready_c = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for s in gl.static_range(STAGES):
            mbarrier.init(ready_t.index(s), count=1)
            mbarrier.init(ready_c.index(s), count=WG_PRODUCER_WARPS * 32)
            mbarrier.init(empty.index(s), count=2)
        return ready_t, ready_c, empty

    @gluon.jit
    def _ws_items(offsets, E, N, BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, NB: gl.constexpr):
        # the work items of a kernel over (row tile, N chunk): the tile map's real tiles (its surplus
        # slots all come after them), counted from the expert offsets, times the N chunks
        ex = gl.arange(0, NB, layout=gl.BlockedLayout([1], [32], [4], [0]))
        lo = gl.load(offsets + ex, mask=ex < E, other=0)
        hi = gl.load(offsets + ex + 1, mask=ex < E, other=0)
        num_n = (N + BLOCK_N - 1) // BLOCK_N
        return num_n, gl.sum((hi - lo + BLOCK_M - 1) // BLOCK_M, axis=0) * num_n

    @gluon.jit
    def _wg_tile(rnd, n_tiles, num_m, num_n, offsets, order):
        # this program's tile of round rnd. The tiles go heaviest expert first (order: the experts by
        # rows, most first), and a round's tiles are dealt to the programs forwards, the next round's
        # backwards, so that no program draws the heaviest tile of every round: under skewed routing
        # a fixed share in expert order left one program holding a heavy expert's tiles to the end
        lane = gl.program_id(0)
        if rnd % 2 == 1:
            lane = gl.num_programs(0) - 1 - lane
        tile = rnd * gl.num_programs(0) + lane
        valid = tile < n_tiles                      # the last round may have fewer tiles than programs
        tile = gl.minimum(tile, n_tiles - 1)
        e = gl.load(order + tile // (num_m * num_n))
        start = gl.load(offsets + e)
        end = gl.where(valid, gl.load(offsets + e + 1), start)   # an invalid tile: no steps, no store
        return e, (tile // num_n) % num_m, tile % num_n, start, end, valid

    @gluon.jit
    def _wg_produce(desc, g_smem, g2_smem, t_smem, ready_t, ready_c, empty, G, gather, offsets, order, G_COLS,
                    stride_gr, n_tiles, num_m, num_n, GATHER_A: gl.constexpr):
        STAGES: gl.constexpr = g_smem.type.shape[0]
        BLOCK_K: gl.constexpr = g_smem.type.shape[1]
        BLOCK: gl.constexpr = g_smem.type.shape[2]
        G2: gl.constexpr = g2_smem.type.shape[2]   # the wide tiles' second gathered block (g2 is g when narrow)
        WIDE: gl.constexpr = G2 < BLOCK
        if WIDE:   # a warp's copies cover 64 columns, so that one index vector serves both blocks
            layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [WG_PRODUCER_WARPS, 1], [1, 0])
            GW: gl.constexpr = BLOCK + G2
        else:
            layout: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [WG_PRODUCER_WARPS, 1], [1, 0])
            GW: gl.constexpr = BLOCK
        ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, layout))
        cs = gl.arange(0, BLOCK, layout=gl.SliceLayout(0, layout))
        it = 0   # steps so far, over all of this program's tiles: the ring's position and phase
        for rnd in range(0, (n_tiles + gl.num_programs(0) - 1) // gl.num_programs(0)):
            e, pm, pn, start, end, valid = _wg_tile(rnd, n_tiles, num_m, num_n, offsets, order)
            if GATHER_A:   # dW1: X's gathered columns are the tile's rows; dH's 2 * BLOCK columns by TMA
                g_col, t_col = pm * GW, pn * 2 * BLOCK
            else:          # dW2: A' by TMA gives the tile's 2 * BLOCK rows; dO's gathered columns
                g_col, t_col = pn * GW, pm * 2 * BLOCK
            # a step's row indices are read a step ahead: read in the step itself, their latency held
            # back every step of this warpgroup, which then set the pace (about 20% slower on the H200)
            rows = start + ks
            idx_next = gl.load(gather + rows, mask=rows < end, other=0)
            for r0 in range(start, end, BLOCK_K):
                mrow = r0 + ks < end
                idx = idx_next.to(gl.int64)
                rows = r0 + BLOCK_K + ks
                idx_next = gl.load(gather + rows, mask=rows < end, other=0)
                s = it % STAGES
                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                # rows past the segment's end belong to the next expert: the gathered rows there are
                # zeros (the mask), so they add nothing
                mbarrier.expect(ready_t.index(s), 2 * BLOCK_K * BLOCK * t_smem.type.element_ty.primitive_bitwidth // 8)
                _tma_load(desc, [r0, t_col], ready_t.index(s), t_smem.index(2 * s))
                _tma_load(desc, [r0, t_col + BLOCK], ready_t.index(s), t_smem.index(2 * s + 1))
                cols = g_col + cs
                _cp_async(g_smem.index(s), G + idx[:, None] * stride_gr + cols[None, :],
                          mask=mrow[:, None] & (cols < G_COLS)[None, :])
                if WIDE:
                    cols2 = g_col + BLOCK + gl.arange(0, G2, layout=gl.SliceLayout(0, layout))
                    _cp_async(g2_smem.index(s), G + idx[:, None] * stride_gr + cols2[None, :],
                              mask=mrow[:, None] & (cols2 < G_COLS)[None, :])
                gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
                it += 1

    @gluon.jit
    def _wg_tma_out(buf, part, c_desc, row, col, pred, buf2=None, part2=None, c2_desc=None, row2=0, col2=0):
        # part to shared memory, then by TMA to global memory: the consumer goes on to its next MMAs
        # while the store runs, where storing from registers held the tensor cores for its length. A
        # wide tile's second block (buf2) is written before either store is issued, so that the second
        # store does not wait for the first to leave shared memory
        gl_tma.store_wait(0)    # this warpgroup's last store has read the buffer
        _cta_barrier()
        buf.store(part)
        if buf2 is not None:
            buf2.store(part2)
        fence_async_shared()    # written through the generic proxy, read by TMA's async one
        _cta_barrier()          # every thread's part is in before one thread issues the store
        if pred:
            _tma_store(c_desc, [row, col], buf)
            if buf2 is not None:
                _tma_store(c2_desc, [row2, col2], buf2)

    @gluon.jit
    def _square_sum(acc):
        # the fp32 accumulator's sum of squares (of 16-bit gradients, before their rounding: rounded
        # first, the temporaries spilled 24-160 bytes of the wide tiles' registers with Triton 3.6)
        return gl.sum(gl.sum(acc * acc, axis=1), axis=0)

    @gluon.jit
    def _wg_store(C, acc, row0, col0, e, M, N, stride_ce, stride_cm, keep, layout: gl.constexpr):
        # an accumulator to C_e's rows row0.. and columns col0.., from registers
        rows = row0 + gl.arange(0, acc.shape[0], layout=gl.SliceLayout(1, layout))
        cols = col0 + gl.arange(0, acc.shape[1], layout=gl.SliceLayout(0, layout))
        ptrs = C + e.to(gl.int64) * stride_ce + rows[:, None].to(gl.int64) * stride_cm + cols[None, :]
        gl.store(ptrs, acc.to(C.dtype.element_ty), mask=(rows < M)[:, None] & (cols < N)[None, :] & keep)

    @gluon.jit
    def _wg_store_tile(C, acc, acc2, row0, col0, e, M, N, stride_ce, stride_cm, keep, layout: gl.constexpr,
                       layout2: gl.constexpr, GATHER_A: gl.constexpr, WIDE: gl.constexpr):
        # a consumer's half-tile from registers; a wide one's second block below the first (dW1) or to
        # its right (dW2)
        _wg_store(C, acc, row0, col0, e, M, N, stride_ce, stride_cm, keep, layout)
        if WIDE:
            if GATHER_A:
                _wg_store(C, acc2, row0 + acc.shape[0], col0, e, M, N, stride_ce, stride_cm, keep, layout2)
            else:
                _wg_store(C, acc2, row0, col0 + acc.shape[1], e, M, N, stride_ce, stride_cm, keep, layout2)

    @gluon.jit
    def _wg_consume(g_smem, g2_smem, t_smem, ready_t, ready_c, empty, C, c_desc, c_smem, c2_desc, c2_smem, offsets,
                    order, M, N, stride_ce, stride_cm, n_tiles, num_m, num_n, SQ, GATHER_A: gl.constexpr,
                    H: gl.constexpr):
        # one warpgroup: half H of every output tile, BLOCK x BLOCK, or BLOCK x (BLOCK + G2) wide
        STAGES: gl.constexpr = g_smem.type.shape[0]
        BLOCK_K: gl.constexpr = g_smem.type.shape[1]
        BLOCK: gl.constexpr = g_smem.type.shape[2]
        G2: gl.constexpr = g2_smem.type.shape[2]
        WIDE: gl.constexpr = G2 < BLOCK
        GW: gl.constexpr = BLOCK + G2 if WIDE else BLOCK
        mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK, 16])
        # the second accumulator: G2 more rows of the gathered operand's columns (dW1), or columns (dW2)
        mma2: gl.constexpr = mma if GATHER_A else gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                                            instr_shape=[16, G2, 16])
        it = 0
        for rnd in range(0, (n_tiles + gl.num_programs(0) - 1) // gl.num_programs(0)):
            e, pm, pn, start, end, valid = _wg_tile(rnd, n_tiles, num_m, num_n, offsets, order)
            n_steps = (end - start + BLOCK_K - 1) // BLOCK_K
            acc = gl.zeros((BLOCK, BLOCK), gl.float32, mma)   # an expert with no rows writes zeros
            if WIDE:
                acc2 = gl.zeros((G2, BLOCK) if GATHER_A else (BLOCK, G2), gl.float32, mma2)
            for j in range(0, n_steps):
                s = it % STAGES
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
                if GATHER_A:
                    acc = warpgroup_mma(g_smem.index(s).permute((1, 0)), t_smem.index(2 * s + H), acc, is_async=True)
                else:
                    acc = warpgroup_mma(t_smem.index(2 * s + H).permute((1, 0)), g_smem.index(s), acc, is_async=True)
                if WIDE:
                    if GATHER_A:
                        acc2 = warpgroup_mma(g2_smem.index(s).permute((1, 0)), t_smem.index(2 * s + H), acc2,
                                             is_async=True)
                    else:
                        acc2 = warpgroup_mma(t_smem.index(2 * s + H).permute((1, 0)), g2_smem.index(s), acc2,
                                             is_async=True)
                    # this step's two MMAs in flight: the step before is done, so its buffer goes back
                    acc, acc2 = warpgroup_mma_wait(num_outstanding=2, deps=(acc, acc2))
                else:
                    # one MMA in flight: the one before it is done, so its buffer goes back to the producer
                    acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
                if j > 0:
                    mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            if WIDE:
                acc, acc2 = warpgroup_mma_wait(num_outstanding=0, deps=(acc, acc2))
            else:
                acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
                acc2 = acc   # no second block (_wg_store_tile)
            if n_steps > 0:
                mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            if GATHER_A:
                row0, col0 = pm * GW, pn * 2 * BLOCK + H * BLOCK
            else:
                row0, col0 = pm * 2 * BLOCK + H * BLOCK, pn * GW
            if SQ is not None:
                # this half-tile's sum of squares, for the gradient's norm (GradSquares). Its entries
                # past M or N are zeros: the operands' columns there are masked (cp.async) or
                # zero-filled (TMA)
                sq = _square_sum(acc)
                if WIDE:
                    sq += _square_sum(acc2)
                gl.store(SQ + 2 * ((e * num_m + pm) * num_n + pn) + H, sq, mask=valid)
            # dW2's second half-tile lies past M where M is an odd number of BLOCKs
            keep = valid & (row0 < M)
            if c_smem.type.shape[1] == BLOCK:    # TMA_STORE
                # dW1's last tile of rows, past M where M is no whole number of wide tiles, goes from
                # registers: a TMA store would write the next expert's first rows
                if (not WIDE) or (not GATHER_A) or row0 + GW <= M:
                    if WIDE:   # the second block beside the first: below it (dW1) or to its right (dW2)
                        _wg_tma_out(c_smem.index(H), acc.to(C.dtype.element_ty), c_desc, e * M + row0, col0, keep,
                                    c2_smem.index(H), acc2.to(C.dtype.element_ty), c2_desc,
                                    e * M + row0 + (BLOCK if GATHER_A else 0), col0 + (0 if GATHER_A else BLOCK))
                    else:
                        _wg_tma_out(c_smem.index(H), acc.to(C.dtype.element_ty), c_desc, e * M + row0, col0, keep)
                else:
                    _wg_store_tile(C, acc, acc2, row0, col0, e, M, N, stride_ce, stride_cm, valid, mma, mma2, GATHER_A, WIDE)
            else:
                _wg_store_tile(C, acc, acc2, row0, col0, e, M, N, stride_ce, stride_cm, valid, mma, mma2, GATHER_A, WIDE)
        gl_tma.store_wait(0)            # shared memory outlives the stores only while the program runs

    # a partition's function takes only tensors: its constexprs are bound here, one function each
    @gluon.jit
    def _wg_consumer_a0(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m,
                        num_n, SQ):
        _wg_consume(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m, num_n,
                    SQ, True, 0)

    @gluon.jit
    def _wg_consumer_a1(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m,
                        num_n, SQ):
        _wg_consume(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m, num_n,
                    SQ, True, 1)

    @gluon.jit
    def _wg_consumer_b0(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m,
                        num_n, SQ):
        _wg_consume(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m, num_n,
                    SQ, False, 0)

    @gluon.jit
    def _wg_consumer_b1(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m,
                        num_n, SQ):
        _wg_consume(g, g2, t, rt, rc, em, C, cd, cs, cd2, cs2, offsets, order, M, N, sce, scm, n_tiles, num_m, num_n,
                    SQ, False, 1)

    @gluon.jit
    def _wg_producer_a(desc, g, g2, t, rt, rc, em, G, gather, offsets, order, G_COLS, stride_gr, n_tiles, num_m,
                       num_n):
        _wg_produce(desc, g, g2, t, rt, rc, em, G, gather, offsets, order, G_COLS, stride_gr, n_tiles, num_m, num_n, True)

    @gluon.jit
    def _wg_producer_b(desc, g, g2, t, rt, rc, em, G, gather, offsets, order, G_COLS, stride_gr, n_tiles, num_m,
                       num_n):
        _wg_produce(desc, g, g2, t, rt, rc, em, G, gather, offsets, order, G_COLS, stride_gr, n_tiles, num_m, num_n, False)

    @gluon.jit
    def _wgrad_hopper_kernel(
        Am, B, C, gather, offsets, order,   # C_e (M, N) = sum over e's rows r of Am[ia(r)]^T B[ib(r)], one gathered;
                                            # order (E,): the experts by rows, most first
        M, N, stride_ar, stride_br, stride_ce, stride_cm, E,
        GATHER_A: gl.constexpr, BLOCK: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
        CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr, TMA_STORE: gl.constexpr, G2: gl.constexpr,
        SQ=None,   # None, or (2 * tiles,) fp32: each consumer's half-tile's sum of squares (GradSquares)
    ):
        dt: gl.constexpr = Am.dtype.element_ty
        layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK], dt)
        g_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, BLOCK], layout)       # gathered, shared
        if G2 > 0:   # wide tiles: G2 more gathered columns a step, in a block of their own
            g2_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, G2],
                                                gl.NVMMASharedLayout.get_default_for([BLOCK_K, G2], dt))
            GW: gl.constexpr = BLOCK + G2
        else:
            g2_smem = g_smem
            GW: gl.constexpr = BLOCK
        t_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, BLOCK], layout)   # by TMA, a half each
        ready_t, ready_c, empty = _ws_ring(STAGES)
        # the output tiles' store buffers, one a consumer (TMA_STORE: every expert's M rows a whole
        # number of tiles, so that a tile of the (E * M, N) view never reaches the next expert's)
        ct: gl.constexpr = C.dtype.element_ty
        CB: gl.constexpr = BLOCK if TMA_STORE else 8
        c_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([CB, CB], ct)
        c_smem = gl.allocate_shared_memory(ct, [2, CB, CB], c_layout)
        c_desc = gl_tma.make_tensor_descriptor(C, shape=[E * M, N], strides=[stride_cm, 1], block_shape=[CB, CB],
                                               layout=c_layout)
        if TMA_STORE and G2 > 0:   # and the wide tiles' second block: G2 rows (dW1) or columns (dW2)
            R2: gl.constexpr = G2 if GATHER_A else BLOCK
            N2: gl.constexpr = BLOCK if GATHER_A else G2
            c2_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([R2, N2], ct)
            c2_smem = gl.allocate_shared_memory(ct, [2, R2, N2], c2_layout)
            c2_desc = gl_tma.make_tensor_descriptor(C, shape=[E * M, N], strides=[stride_cm, 1], block_shape=[R2, N2],
                                                    layout=c2_layout)
        else:
            c2_smem, c2_desc = c_smem, c_desc
        # the operand in grouped order ends at the rows in use: past them lie the unused slots (token
        # rounding's), whose rows no kernel writes, and TMA reads zeros there instead (the gathered
        # operand's rows are masked to zero, but 0 * inf is NaN)
        rows = gl.maximum(gl.load(offsets + E), 1)
        if GATHER_A:
            desc = gl_tma.make_tensor_descriptor(B, shape=[rows, N], strides=[stride_br, 1],
                                                 block_shape=[BLOCK_K, BLOCK], layout=layout)
            num_m, num_n = (M + GW - 1) // GW, (N + 2 * BLOCK - 1) // (2 * BLOCK)
            pargs = (desc, g_smem, g2_smem, t_smem, ready_t, ready_c, empty, Am, gather, offsets, order, M, stride_ar)
        else:
            desc = gl_tma.make_tensor_descriptor(Am, shape=[rows, M], strides=[stride_ar, 1],
                                                 block_shape=[BLOCK_K, BLOCK], layout=layout)
            num_m, num_n = (M + 2 * BLOCK - 1) // (2 * BLOCK), (N + GW - 1) // GW
            pargs = (desc, g_smem, g2_smem, t_smem, ready_t, ready_c, empty, B, gather, offsets, order, N, stride_br)
        n_tiles = E * num_m * num_n
        pargs = pargs + (n_tiles, num_m, num_n)
        cargs = (g_smem, g2_smem, t_smem, ready_t, ready_c, empty, C, c_desc, c_smem, c2_desc, c2_smem, offsets, order,
                 M, N, stride_ce, stride_cm, n_tiles, num_m, num_n, SQ)
        # the default partition (this kernel's 4 warps) is consumer 0; then consumer 1 and the producer
        if GATHER_A:
            gl.warp_specialize([(_wg_consumer_a0, cargs), (_wg_consumer_a1, cargs), (_wg_producer_a, pargs)],
                               [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        else:
            gl.warp_specialize([(_wg_consumer_b0, cargs), (_wg_consumer_b1, cargs), (_wg_producer_b, pargs)],
                               [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])


# 4 stages of 48 KB fill an H200 SM's shared memory: one program per SM. The registers split 216 / 216 / 72
# (of 504 a thread-slot) between the consumers, whose fp32 accumulators take 128, and the producer,
# whose prefetched indices and addresses need more than the 40 it was first given
WG_CONFIG = dict(BLOCK=128, BLOCK_K=64, STAGES=4, CONSUMER_REGS=216, PRODUCER_REGS=72, G2=0)
# 16-bit gradients are stored by TMA from shared memory, where the two consumers' buffers (64 KB) leave
# room for 3 stages: 4-18% less time than storing from registers at the paper's shapes and h200_moe's.
# fp32 gradients (fp32 master weights) are stored from registers: by TMA they were slower, 46-62% with
# whole tiles (2 stages), 1-7% with half-tiles in turn (3 stages) (docs/LOG.md, 2026-12-01)
WG_TMA_STORE_CONFIG = dict(WG_CONFIG, STAGES=3)
WG_TMA_STORE = None   # None: the stores by TMA where the output allows it; False: from registers
# Wide tiles, 192 (the gathered operand's columns) x 256 instead of 128 x 256: a step reads 56 KB from L2
# for 1.5x the MMAs, 22% fewer bytes a FLOP. The consumers' accumulators take 192 registers (a 128- and
# a 64-row or -column block, since a tensor's sides are powers of two), which leaves the producer 48.
# Against the narrow tiles (H200, docs/LOG.md, 2026-12-02): fp32 gradients (training's, from registers,
# 4 stages of 56 KB) 4-8% less time at the paper's shapes and h200_moe's (120B dW1 within the spread);
# 16-bit ones by TMA, in 32-row steps that leave room for the 96 KB of store buffers, 6-11% less
WG_WIDE_CONFIG = dict(BLOCK=128, BLOCK_K=64, STAGES=4, CONSUMER_REGS=232, PRODUCER_REGS=48, G2=64)
WG_WIDE_TMA_CONFIG = dict(WG_WIDE_CONFIG, BLOCK_K=32)
WG_WIDE = None        # None: wide tiles (_wg_config); False: the narrow ones


@triton.jit
def _expert_order_kernel(offsets, order, E, BLOCK: tl.constexpr):
    # order[rank] = e, where rank counts the experts with more rows than e, or as many and a lower
    # index: torch.argsort(rows, descending=True, stable=True) in one launch, where the argsort and
    # its operands took ~100 us of host time a call
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    me = e < E
    rows_e = tl.load(offsets + e + 1, mask=me, other=0) - tl.load(offsets + e, mask=me, other=0)
    rank = tl.zeros([BLOCK], tl.int32)
    for f0 in range(0, E, BLOCK):
        f = f0 + tl.arange(0, BLOCK)
        mf = f < E
        rows_f = tl.load(offsets + f + 1, mask=mf, other=0) - tl.load(offsets + f, mask=mf, other=0)
        ahead = (rows_f[None, :] > rows_e[:, None]) | ((rows_f[None, :] == rows_e[:, None]) & (f[None, :] < e[:, None]))
        rank += tl.sum((ahead & mf[None, :]).to(tl.int32), axis=1)
    tl.store(order + rank, e, mask=me)


def expert_order(offsets):
    """The experts by rows, most first, ties by index (int32, (E,)): the Hopper weight gradients' tile order."""
    E = offsets.numel() - 1
    order = torch.empty(E, device=offsets.device, dtype=torch.int32)
    _expert_order_kernel[(cdiv(E, 64),)](offsets, order, E, BLOCK=64)
    return order


def _wg_tma_store(c):
    """Whether _wgrad_hopper_kernel stores c (E, M, N) by TMA: 16-bit, contiguous, TMA's alignment, and M a
    whole number of tiles (the (E * M, N) view's tiles must not reach the next expert's rows)."""
    M, N = c.shape[1:]
    return (WG_TMA_STORE is not False and c.element_size() == 2 and M % WG_CONFIG["BLOCK"] == 0 and c.is_contiguous()
            and N * c.element_size() % 16 == 0 and c.data_ptr() % 16 == 0)


def _wg_config(c):
    """(_wgrad_hopper_kernel's config for c, whether it stores by TMA). Wide tiles (WG_WIDE) stored by TMA
    take 32-row steps, which leave room for the store buffers."""
    tma = _wg_tma_store(c)
    if WG_WIDE is False:
        return (WG_TMA_STORE_CONFIG if tma else WG_CONFIG), tma
    return (WG_WIDE_TMA_CONFIG if tma else WG_WIDE_CONFIG), tma


def _wgrad_hopper(a, b, c, r: Routing, gather_a, order=None, squares=False):
    """c (E, M, N) = wgrad(a, b, r, ...) with exactly one of a, b gathered, by _wgrad_hopper_kernel;
    order: expert_order(r.offsets), if the caller has it. Returns wgrad's parts with squares, else None."""
    E, (M, N) = c.shape[0], c.shape[1:]
    _set_allocator()   # the TMA descriptor is built on the device, in Triton's global scratch
    order = expert_order(r.offsets) if order is None else order
    cfg, tma_store = _wg_config(c)
    blk, gw = cfg["BLOCK"], cfg["BLOCK"] + cfg["G2"]
    tiles = E * (cdiv(M, gw) * cdiv(N, 2 * blk) if gather_a else cdiv(M, 2 * blk) * cdiv(N, gw))
    parts = torch.empty(2 * tiles, device=a.device, dtype=torch.float32) if squares else None  # every slot written
    _wgrad_hopper_kernel[(_n_programs(a.device, tiles),)](
        a, b, c, r.gather_idx, r.offsets, order, M, N, a.stride(0), b.stride(0), c.stride(0),
        c.stride(1), E, GATHER_A=gather_a, TMA_STORE=tma_store, SQ=parts, num_warps=4, **cfg)
    return parts


# dA' on sm_90, warp-specialised in Gluon like the weight gradients above (20-28% less time than
# _down_bwd_kernel at h200_moe's layer shape and the paper's d = 1536 and 4096 shapes, 18% at d = 768;
# docs/LOG.md, 2026-12-01): a producer warpgroup gathers dO's rows by cp.async and loads W2's rows by
# TMA into a ring; two consumer warpgroups each multiply 64 of a tile's 128 rows by the same W2 block
# on wgmma and store the accumulator to shared memory; an epilogue warpgroup reads it back 16 rows at
# a time and runs _down_bwd_kernel's epilogue, while the consumers multiply the next item. So h, dH
# and A' move in coalesced rows, and the tensor cores do not wait on them (3-10% less time than the
# consumers running the epilogue themselves, except at d = 768, where it is 3% more). Every work item
# (a 128-row tile of the tile map and BLOCK_N of the n columns) takes the same d / BLOCK_K steps, so a
# fixed share of the items per program is balanced whatever the routing.

HOPPER_DOWN_BWD = None  # None: on sm_90 where the operands allow it (_use_hopper_down_bwd); False: off; True: forced


def _use_hopper_down_bwd(dout, w2, h):
    """Whether down_bwd runs _down_bwd_hopper_kernel (_use_hopper): it takes 16-bit operands of one dtype,
    TMA's rules on W2 (contiguous, a 16-byte aligned base), rows of dO that cp.async can copy, and TMA's
    on h seen as (2, R, n) (_rows_by_cp_async: an aligned base, d and n multiples of 16)."""
    ok = (dout.dtype == w2.dtype == h.dtype and dout.dtype in (torch.bfloat16, torch.float16)
          and w2.is_contiguous() and w2.data_ptr() % 16 == 0 and _rows_by_cp_async(dout)
          and _rows_by_cp_async(h) and h.shape[1] % 32 == 0)   # the halves' offset n a multiple of 16 bytes
    return _use_hopper(HOPPER_DOWN_BWD, "HOPPER_DOWN_BWD", dout, ok, "the Hopper dA' kernel needs an sm_90 GPU, "
                       "Triton 3.6 or newer with Gluon, 16-bit operands, a contiguous W2, and d and n multiples of 16")


if gluon is not None:

    @gluon.jit
    def _ws_gathered_rows(base, gather, row0, row_end, ms, stride):
        # an item's gathered rows, as pointers to the two halves' source rows and their masks: rows past
        # the segment's end read token 0's row, masked to zeros
        HALF: gl.constexpr = ms.shape[0]
        m0 = row0 + ms < row_end
        m1 = row0 + HALF + ms < row_end
        p0 = base + gl.load(gather + row0 + ms, mask=m0, other=0).to(gl.int64)[:, None] * stride
        p1 = base + gl.load(gather + row0 + HALF + ms, mask=m1, other=0).to(gl.int64)[:, None] * stride
        return p0, p1, m0, m1

    @gluon.jit
    def _ws_copy_gathered(g_smem, s, ready_c, p0, p1, m0, m1, kk, D):
        # ring stage s's two halves of the gathered rows, columns kk (past D: zeros), by cp.async; every
        # producer thread's arrival on ready_c fires when its copies have landed
        mk = (kk < D)[None, :]
        _cp_async(g_smem.index(2 * s), p0 + kk[None, :], mask=m0[:, None] & mk)
        _cp_async(g_smem.index(2 * s + 1), p1 + kk[None, :], mask=m1[:, None] & mk)
        gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)

    @gluon.jit
    def _db_item(item, num_n, tile_expert, tile_row0, offsets):
        t = item // num_n
        e = gl.load(tile_expert + t)
        return e, gl.load(tile_row0 + t), gl.load(offsets + e + 1), item % num_n

    @gluon.jit
    def _ws_produce(w_desc, g_smem, w_smem, ready_t, ready_c, empty, A, gather, tile_expert, tile_row0, offsets,
                    N, D, stride_at, num_n, n_items, UP: gl.constexpr):
        # the producer warps of dA' (UP False: A is dO) and of the up-projection (UP True: A is X): an item's
        # 128 gathered rows by cp.async, a half a consumer, and the weight block by TMA, into one ring
        HALF: gl.constexpr = g_smem.type.shape[1]
        BLOCK_K: gl.constexpr = g_smem.type.shape[2]
        STAGES: gl.constexpr = g_smem.type.shape[0] // 2
        TILES: gl.constexpr = w_smem.type.shape[0] // STAGES   # weight tiles a stage
        TILE_BYTES: gl.constexpr = w_smem.type.shape[1] * w_smem.type.shape[2] * w_smem.type.element_ty.primitive_bitwidth // 8
        layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [WG_PRODUCER_WARPS, 1], [1, 0])
        ms = gl.arange(0, HALF, layout=gl.SliceLayout(1, layout))
        ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(0, layout))
        it = 0
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            # rows past the segment's end, and columns past d, are zeros (the masks): those rows are never stored
            a0, a1, m0, m1 = _ws_gathered_rows(A, gather, row0, row_end, ms, stride_at)
            if UP:
                w_row = e * D
            else:
                w_row = e * N + pn * TILES * w_smem.type.shape[1]
            for k0 in range(0, D, BLOCK_K):
                s = it % STAGES
                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)
                if UP:
                    # W1 as (E d, 2n): the gate block, and the up block n columns on (past 2n, zeros). Where
                    # BLOCK_N does not divide n, the last gate block runs on into up columns: their h and a
                    # are not stored; W1's rows past e's d (the next expert's) meet only zero columns
                    BLOCK_N: gl.constexpr = w_smem.type.shape[2]
                    _tma_load(w_desc, [w_row + k0, pn * BLOCK_N], ready_t.index(s), w_smem.index(2 * s))
                    _tma_load(w_desc, [w_row + k0, N + pn * BLOCK_N], ready_t.index(s), w_smem.index(2 * s + 1))
                else:
                    # W2 as (E n, d), in TILES 128-column parts: where n is not a multiple of the item's
                    # columns, the rows past e's n are the next expert's (or zeros): their columns of dA'
                    # are never stored and meet a = 0 in dS's sum, so only weights already inf or NaN (a
                    # run that has diverged) could reach dS through them
                    PART: gl.constexpr = w_smem.type.shape[1]
                    for p in gl.static_range(TILES):
                        _tma_load(w_desc, [w_row + p * PART, k0], ready_t.index(s), w_smem.index(TILES * s + p))
                _ws_copy_gathered(g_smem, s, ready_c, a0, a1, m0, m1, k0 + ks, D)
                it += 1

    @gluon.jit
    def _db_consume(g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,
                    offsets, D, num_n, n_items, HH: gl.constexpr):
        # one warpgroup: rows HH * HALF to (HH + 1) * HALF of every item, into shared memory for the
        # epilogue warpgroup, which runs an item's epilogue while the consumers multiply the next one.
        # An item of two 128-column parts takes two accumulators: one of 64 x 256 (128 registers) in a
        # single wgmma does not compile under the 128 registers a thread that 16 warps leave to ptxas
        HALF: gl.constexpr = g_smem.type.shape[1]
        STAGES: gl.constexpr = g_smem.type.shape[0] // 2
        SPLIT: gl.constexpr = w_smem.type.shape[0] // STAGES
        PART: gl.constexpr = w_smem.type.shape[1]
        BLOCK_K: gl.constexpr = w_smem.type.shape[2]
        mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, PART, 16])
        a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=mma, k_width=2)
        n_k = (D + BLOCK_K - 1) // BLOCK_K
        it = 0
        ti = 0   # items so far: the hand-over barriers' phase
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            acc0 = gl.zeros((HALF, PART), gl.float32, mma)
            acc1 = gl.zeros((HALF, PART), gl.float32, mma)   # SPLIT == 1: never used, and compiled away
            for j in range(0, n_k):
                s = it % STAGES
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
                if SPLIT == 2:
                    # both parts multiply the same rows of dO: read from shared memory once, into registers,
                    # not once a part, so a step reads 80 KB of operands there, not 96, beside the 48 KB the
                    # producer writes (4-5% less time at 7B and 30B, docs/LOG.md, 2026-12-06). Those registers
                    # stay the MMAs' until they are done, and a second set (the next step's, loaded while these
                    # run) does not fit, so each step waits for its own MMAs; the other consumer's keep the
                    # tensor cores busy meanwhile
                    a = g_smem.index(2 * s + HH).load(a_layout)
                    acc0 = warpgroup_mma(a, w_smem.index(2 * s).permute((1, 0)), acc0, is_async=True)
                    acc1 = warpgroup_mma(a, w_smem.index(2 * s + 1).permute((1, 0)), acc1, is_async=True)
                    acc0, acc1, a = warpgroup_mma_wait(num_outstanding=0, deps=(acc0, acc1, a))
                    mbarrier.arrive(empty.index(s), count=1)
                else:
                    acc0 = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(s).permute((1, 0)), acc0, is_async=True)
                    # this step's MMA in flight: the last step's is done, so its buffers go back
                    acc0, acc1 = warpgroup_mma_wait(num_outstanding=1, deps=(acc0, acc1))
                    if j > 0:
                        mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            if SPLIT == 1:
                acc0, acc1 = warpgroup_mma_wait(num_outstanding=0, deps=(acc0, acc1))
                mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            mbarrier.wait(epi_empty, (ti & 1) ^ 1)   # the epilogue has read the last item (a new barrier passes phase 1)
            # fp32, or rounded to 16 bits where two parts' fp32 would not fit (DB_WIDE_CONFIG)
            e_smem.index(SPLIT * HH).store(acc0.to(e_smem.type.element_ty))
            if SPLIT == 2:
                e_smem.index(SPLIT * HH + 1).store(acc1.to(e_smem.type.element_ty))
            _cta_barrier()                           # every thread's part stored before the hand-over
            mbarrier.arrive(epi_ready, count=1)
            ti += 1

    # the dA' epilogue's rows a step. 32 (208 registers, beside a cp.async ring of h) took 6% longer at 1.4B
    # and 9% less at 7B (docs/LOG.md, 2026-12-02); the TMA ring of two 32-row chunks (32 KB) would not fit
    # beside the 256-column items' ring and hand-over
    DB_CHUNK = gl.constexpr(16)

    @gluon.jit
    def _sigmoid_approx(g):
        # 1 / (1 + 2^(-g log2 e)) by the two special-function approximations, flushing denormals: one
        # warpgroup does all of the epilogue's math, one warp per scheduler, and bounds dA' where the
        # reduction is short. 1 / x compiles to div.full.f32 and exp to a non-flushing ex2 with a fix-up,
        # about 8 instructions an element more: with this, dA' took 6-9% less time at 1.4B in three runs,
        # within the spread at the other shapes, its outputs bit-identical to the exact forms' at all four
        # (docs/LOG.md, 2026-12-02). 0fBFB8AA3B is -log2(e)
        return gl.inline_asm_elementwise(
            "{ .reg .f32 t; mul.f32 t, $1, 0fBFB8AA3B; ex2.approx.ftz.f32 t, t; add.f32 t, t, 0f3F800000; "
            "rcp.approx.ftz.f32 $0, t; }", "=r,r", [g], dtype=gl.float32, is_pure=True, pack=1)

    @gluon.jit
    def _db_h_issue(h_desc, h_smem, h_bar, b: gl.constexpr, row, col):
        # a chunk's h, gate and up, by one TMA copy into slot b of the ring: no LSU requests beside the
        # epilogue's stores and the producer's copies. The descriptor views h as (2, R, n), its
        # halves, so rows past R and columns past n come as zeros, as masked loads would give them
        mbarrier.expect(h_bar.index(b), 2 * h_smem.type.shape[2] * h_smem.type.shape[3] * h_smem.type.element_ty.primitive_bitwidth // 8)
        _tma_load(h_desc, [0, row, col], h_bar.index(b), h_smem.index(b))

    @gluon.jit
    def _db_epilogue(e_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
                     N, R, stride_hr, stride_ar, num_n, n_items, h_smem, h_bar, h_desc):
        # _down_bwd_kernel's epilogue on a whole item, CHUNK rows of a 128-column part at a time: recompute
        # a from h, write dH, A' and this part's share of dS. A chunk's h comes by TMA into a ring of two,
        # issued two chunks ahead (an item's first two while the MMAs run), and its scores into registers a
        # chunk ahead. One warp a scheduler, this warpgroup sets dA''s pace where the reduction is short
        # (~35k cycles an item at 1.4B against ~25k for the consumers' MMAs, clock stamps, 2026-12-04), so
        # what it issues counts: with h loaded into its registers a chunk ahead, dA' took about 15% longer at
        # 1.4B and as long from 7B on (docs/LOG.md, 2026-12-04)
        HALF: gl.constexpr = e_smem.type.shape[1]
        PART: gl.constexpr = e_smem.type.shape[2]
        SPLIT: gl.constexpr = e_smem.type.shape[0] // 2
        CHUNK: gl.constexpr = DB_CHUNK
        PER: gl.constexpr = HALF // CHUNK * SPLIT   # chunks a half
        epi: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
        rs = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, epi))
        cs = gl.arange(0, PART, layout=gl.SliceLayout(0, epi))
        ti = 0
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            col0 = pn * SPLIT * PART
            # chunk q of an item: half q // PER, rows ((q % PER) // SPLIT) * CHUNK on in it, part q % SPLIT.
            # Its first two chunks' h by TMA and its first scores, while the MMAs run
            _db_h_issue(h_desc, h_smem, h_bar, 0, row0, col0)
            _db_h_issue(h_desc, h_smem, h_bar, 1, row0 + (1 // SPLIT) * CHUNK, col0 + (1 % SPLIT) * PART)
            s_n = gl.load(S + (row0 + rs).to(gl.int64), mask=row0 + rs < row_end, other=0.0)
            mbarrier.wait(epi_ready, ti & 1)
            # the halves in a loop, their chunks unrolled: with every chunk unrolled, or the parts in the
            # loop, the chunks' addresses were computed ahead of it and registers spilled
            for hh in range(0, 2):
                r0 = row0 + hh * HALF
                for j in gl.static_range(PER):
                    # PER is even: chunk q's buffer is q % 2
                    mbarrier.wait(h_bar.index(j % 2), ((ti * 2 * PER + hh * PER + j) // 2) & 1)
                    # the slot as 2 * CHUNK rows: indexing its first dim would leave a rank-3 layout on a 2-D view
                    hb = h_smem.index(j % 2).reshape([2 * CHUNK, PART])
                    g = hb.slice(0, CHUNK).load(epi)
                    u = hb.slice(CHUNK, CHUNK).load(epi)
                    _cta_barrier()   # every thread has read the buffer before TMA refills it
                    qn = hh * PER + j + 2
                    if qn < 2 * PER:
                        _db_h_issue(h_desc, h_smem, h_bar, j % 2, row0 + (qn // PER) * HALF
                                    + ((qn % PER) // SPLIT) * CHUNK, col0 + (qn % SPLIT) * PART)
                    sc = s_n
                    jn = j + 1   # the next chunk's scores (past the half: the next half's first; past the item: masked)
                    rn = r0 + (jn // SPLIT) * CHUNK + rs
                    s_n = gl.load(S + rn.to(gl.int64), mask=rn < gl.minimum(row_end, row0 + 2 * HALF), other=0.0)
                    cols = col0 + (j % SPLIT) * PART + cs
                    rows = r0 + (j // SPLIT) * CHUNK + rs
                    mrow = rows < row_end
                    mask = mrow[:, None] & (cols < N)[None, :]
                    rows64 = rows.to(gl.int64)
                    # dA' = dO[gather] @ W2_e^T: consumer hh's part j % SPLIT
                    da_raw = e_smem.index(SPLIT * hh + j % SPLIT).slice((j // SPLIT) * CHUNK, CHUNK, dim=0).load(epi)
                    da_raw = da_raw.to(gl.float32)
                    g = g.to(gl.float32)
                    u = u.to(gl.float32)
                    sig = _sigmoid_approx(g)
                    silu = g * sig
                    a = silu * u                     # zero past n (u is); past the segment its dS is not stored
                    da = da_raw * sc[:, None]        # dL/da = s * dA'
                    dp = dH + rows64[:, None] * stride_hr + cols[None, :]
                    gl.store(Ap + rows64[:, None] * stride_ar + cols[None, :], (a * sc[:, None]).to(Ap.dtype.element_ty),
                             mask=mask)
                    gl.store(dp, (da * u * (sig + silu * (1.0 - sig))).to(dH.dtype.element_ty), mask=mask)
                    gl.store(dp + N, (da * silu).to(dH.dtype.element_ty), mask=mask)
                    gl.store(dS_part + (pn * SPLIT + j % SPLIT).to(gl.int64) * R + rows64, gl.sum(da_raw * a, axis=1),
                             mask=mrow)
            _cta_barrier()   # every thread has read the buffer before the consumers may overwrite it
            mbarrier.arrive(epi_empty, count=1)
            ti += 1

    @gluon.jit
    def _db_consumer0(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
        _db_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 0)

    @gluon.jit
    def _db_consumer1(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):
        _db_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, 1)

    @gluon.jit
    def _down_bwd_hopper_kernel(
        dO, W2, H, S, gather, tile_expert, tile_row0, offsets,   # as _down_bwd_kernel's; W2 (E, n, d) contiguous
        dH, Ap, dS_part,                                         # out: dH (R, 2n), A' (R, n), dS_part (parts, R): a row a 128 columns
        N, D, E, R, stride_ot, stride_hr, stride_ar,
        BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr, NB: gl.constexpr,
        ACC16: gl.constexpr, CONSUMER_REGS: gl.constexpr,
        EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr,
    ):
        dt: gl.constexpr = dO.dtype.element_ty
        HALF: gl.constexpr = BLOCK_M // 2
        PART: gl.constexpr = 128                  # an item's BLOCK_N columns are 1 or 2 parts of 128
        SPLIT: gl.constexpr = BLOCK_N // PART
        g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_K], dt)
        w_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([PART, BLOCK_K], dt)
        g_smem = gl.allocate_shared_memory(dt, [2 * STAGES, HALF, BLOCK_K], g_layout)      # gathered dO, a half each
        w_smem = gl.allocate_shared_memory(dt, [SPLIT * STAGES, PART, BLOCK_K], w_layout)  # W2 by TMA, shared
        # the accumulators' hand-over, a consumer's part each: fp32, or (ACC16) rounded to dO's dtype
        if ACC16:
            e_smem = gl.allocate_shared_memory(dt, [2 * SPLIT, HALF, PART], gl.NVMMASharedLayout.get_default_for([HALF, PART], dt))
        else:
            e_smem = gl.allocate_shared_memory(gl.float32, [2 * SPLIT, HALF, PART], gl.SwizzledSharedLayout(2, 1, 8, order=[1, 0]))
        ready_t, ready_c, empty = _ws_ring(STAGES)
        # the accumulators' hand-over: epi_ready when both consumers have stored theirs, epi_empty
        # when the epilogue has read them. One buffer: a second (64 KB) would not fit beside the ring.
        # With a 4th stage and the buffer holding one consumer's half at a time (as the up-projection's)
        # the wide items took as long (docs/LOG.md, 2026-12-04)
        epi_ready = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        epi_empty = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
        mbarrier.init(epi_ready, count=2)
        mbarrier.init(epi_empty, count=1)
        w_desc = gl_tma.make_tensor_descriptor(W2, shape=[E * N, D], strides=[D, 1], block_shape=[PART, BLOCK_K],
                                               layout=w_layout)
        num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
        cargs = (g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, tile_expert, tile_row0,
                 offsets, D, num_n, n_items)
        # two chunks of h, gate and up (16 KB), each filled by one TMA copy through a (2, R, n) view of h
        h_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([2, DB_CHUNK, PART], dt)
        h_smem = gl.allocate_shared_memory(dt, [2, 2, DB_CHUNK, PART], h_layout)
        h_bar = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(h_bar.index(i), count=1)
        h_desc = gl_tma.make_tensor_descriptor(H, shape=[2, R, N], strides=[N, stride_hr, 1],
                                               block_shape=[2, DB_CHUNK, PART], layout=h_layout)
        eargs = (e_smem, epi_ready, epi_empty, H, S, dH, Ap, dS_part, tile_expert, tile_row0, offsets,
                 N, R, stride_hr, stride_ar, num_n, n_items, h_smem, h_bar, h_desc)
        pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, dO, gather, tile_expert, tile_row0, offsets,
                 N, D, stride_ot, num_n, n_items, False)
        gl.warp_specialize([(_db_consumer0, cargs), (_db_consumer1, cargs), (_db_epilogue, eargs), (_ws_produce, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])


# 4 stages of 32 KB, the two consumers' 32 KB accumulator buffers and the epilogue's 16 KB ring of h:
# 208 KB, one program per SM. Four warpgroups share 512 registers a thread-slot: the consumers'
# accumulators take 64 each
DB_CONFIG = dict(BLOCK_N=128, BLOCK_K=64, STAGES=4, ACC16=False, CONSUMER_REGS=144, EPILOGUE_REGS=152,
                 PRODUCER_REGS=72)
# 256-column items (where n is a multiple of 256): each gathered dO row is read n / 256 times instead of
# n / 128, so a stage brings a quarter fewer bytes a FLOP (48 KB for 128 x 256 x 64, not 32 for 128 x
# 128 x 64), and each consumer keeps two 64 x 128 accumulators. Their fp32 accumulators
# (128 KB) would not fit beside a ring, so they are handed over rounded to dO's dtype: dS then carries
# bf16's rounding of dA' (relative error 1.7e-3 against float64, where the fp32 hand-over gives 1e-6 to
# 4e-6) and dH's error grows from 1.7e-3 to 2.3e-3. 3 stages of 48 KB, a 64 KB hand-over and the 16 KB
# ring of h: 224 KB. Against 128-column items (with h by TMA, docs/LOG.md, 2026-12-04) 11-13% less time
# at the paper's d = 4096 shapes, 8% at 7B and 12% at 1.4B (best rounds). 2 stages took 7-55% longer (2026-12-03); a
# 4th, with the hand-over one consumer's half at a time, as long (2026-12-04). Registers (consumer /
# epilogue / producer): the consumers hold their two accumulators and the step's rows of dO (_db_consume),
# and below 176 ptxas runs their MMAs one at a time; at 176 / 120 / 40 nothing spills under Triton 3.6
# to 3.8, and the consumers spill 8 bytes under 3.9
DB_WIDE_CONFIG = dict(BLOCK_N=256, BLOCK_K=64, STAGES=3, ACC16=True, CONSUMER_REGS=176, EPILOGUE_REGS=120,
                      PRODUCER_REGS=40)
DB_WIDE = None   # None: DB_WIDE_CONFIG where n is a multiple of 256; True / False force it or not


def _db_config(n):
    """_down_bwd_hopper_kernel's config for an expert width n (DB_WIDE)."""
    return DB_WIDE_CONFIG if (n % 256 == 0 if DB_WIDE is None else DB_WIDE) else DB_CONFIG


def _down_bwd_hopper(dout, w2, h, r: Routing, dH, Ap):
    """down_bwd's dA' and epilogue by _down_bwd_hopper_kernel; returns dS's parts (parts, R) fp32, grouped
    order, every part of every row in a tile written."""
    R, (E, n, d) = h.shape[0], w2.shape
    cfg = _db_config(n)
    bn = cfg["BLOCK_N"]
    dS_part = torch.empty(cdiv(n, bn) * (bn // 128), R, device=h.device, dtype=torch.float32)   # a row a part
    _set_allocator()   # W2's TMA descriptor is built on the device
    items = r.tile_expert.numel() * cdiv(n, bn)
    _down_bwd_hopper_kernel[(_n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part,
        n, d, E, R, dout.stride(0), h.stride(0), Ap.stride(0), BLOCK_M=BLOCK_M, NB=next_pow2(E),
        num_warps=4, **cfg)
    return dS_part


# The grouped GEMMs (y = a @ W2_e, dX~ = dH @ W1_e^T) on sm_90, warp-specialised in Gluon. Nothing is
# gathered: a producer warpgroup loads a 128-row tile of a and a BLOCK_K x 256 block of the expert's
# weights by TMA into a ring; two consumer warpgroups each multiply 64 of the rows by the block on
# wgmma (64 x 256 accumulators). The reductions are short (n or 2n: 4 to 32 steps of 64), so the
# store of each 64 x 256 tile weighs much against them: a consumer stores a whole tile by TMA from
# shared memory and goes on to its next item while the store runs. A tile that ends past its
# expert's segment is stored from registers, masked, as its last rows belong to the next expert.

HOPPER_GROUPED = None  # None: on sm_90 where the operands allow it (_use_hopper_grouped); False: off; True: forced


def _use_hopper_grouped(a, b, c, trans_b):
    """Whether grouped_mm runs _grouped_mm_hopper_kernel (_use_hopper): 16-bit operands of one dtype,
    contiguous, with rows of a multiple of 16 bytes (TMA's rules on a, b and c)."""
    ok = (a.dtype == b.dtype and a.dtype in (torch.bfloat16, torch.float16) and a.is_contiguous()
          and b.is_contiguous() and c.is_contiguous() and a.shape[1] % 8 == 0 and c.shape[1] % 8 == 0
          and a.data_ptr() % 16 == 0 and b.data_ptr() % 16 == 0 and c.data_ptr() % 16 == 0)
    return _use_hopper(HOPPER_GROUPED, "HOPPER_GROUPED", a, ok, "the Hopper grouped GEMM needs an sm_90 GPU, Triton "
                       "3.6 or newer with Gluon, contiguous 16-bit operands and rows of a multiple of 8 elements")


if gluon is not None:

    @gluon.jit
    def _gm_produce(a_desc, b_desc, a_smem, b_smem, ready, empty, tile_expert, tile_row0, offsets, N, KD, num_n,
                    n_items, TRANS_B: gl.constexpr):
        STAGES: gl.constexpr = a_smem.type.shape[0]
        BLOCK_K: gl.constexpr = a_smem.type.shape[2]
        BLOCK_N: gl.constexpr = b_smem.type.shape[1] if TRANS_B else b_smem.type.shape[2]
        nbytes: gl.constexpr = (a_smem.type.shape[1] + BLOCK_N) * BLOCK_K * a_smem.type.element_ty.primitive_bitwidth // 8
        it = 0
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            # a's rows past the segment are the next expert's: their rows of c are never stored. B as 2-D:
            # its blocks may run into the next expert's rows, where a's columns past KD are zeros (TMA
            # fills past the descriptor's bounds) or, transposed, c's columns past N are never stored
            for k0 in range(0, KD, BLOCK_K):
                s = it % STAGES
                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                mbarrier.expect(ready.index(s), nbytes)
                _tma_load(a_desc, [row0, k0], ready.index(s), a_smem.index(s))
                if TRANS_B:
                    _tma_load(b_desc, [e * N + pn * BLOCK_N, k0], ready.index(s), b_smem.index(s))
                else:
                    _tma_load(b_desc, [e * KD + k0, pn * BLOCK_N], ready.index(s), b_smem.index(s))
                it += 1

    @gluon.jit
    def _gm_consume(a_smem, b_smem, c_smem, ready, empty, c_desc, C, tile_expert, tile_row0, offsets, N, KD, stride_cr,
                    num_n, n_items, TRANS_B: gl.constexpr, H: gl.constexpr):
        # one warpgroup: rows H * HALF to (H + 1) * HALF of every item
        STAGES: gl.constexpr = a_smem.type.shape[0]
        BLOCK_K: gl.constexpr = a_smem.type.shape[2]
        HALF: gl.constexpr = c_smem.type.shape[1]
        BLOCK_N: gl.constexpr = c_smem.type.shape[2]
        mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 16])
        n_k = (KD + BLOCK_K - 1) // BLOCK_K
        it = 0
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            acc = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
            for j in range(0, n_k):
                s = it % STAGES
                mbarrier.wait(ready.index(s), (it // STAGES) & 1)
                a = a_smem.index(s).slice(H * HALF, HALF, dim=0)
                if TRANS_B:
                    acc = warpgroup_mma(a, b_smem.index(s).permute((1, 0)), acc, is_async=True)
                else:
                    acc = warpgroup_mma(a, b_smem.index(s), acc, is_async=True)
                # one MMA in flight: the one before it is done, so its stage goes back to the producer
                acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
                if j > 0:
                    mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            r0 = row0 + H * HALF
            # acc is cast inside each branch, not once before them: from the single cast, Triton 3.8's PTX
            # made ptxas 12.9 run every wgmma of the main loop one at a time (its note C7514; the kernel
            # 13-22% slower at d = 4096 on the H200, docs/LOG.md, 2026-12-05)
            if r0 + HALF <= row_end:   # all rows the expert's: by TMA, which also clips the columns past N
                _wg_tma_out(c_smem.index(H), acc.to(C.dtype.element_ty), c_desc, r0, pn * BLOCK_N, True)
            else:
                rows = r0 + gl.arange(0, HALF, layout=gl.SliceLayout(1, mma))
                cols = pn * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, mma))
                gl.store(C + rows.to(gl.int64)[:, None] * stride_cr + cols[None, :], acc.to(C.dtype.element_ty),
                         mask=(rows < row_end)[:, None] & (cols < N)[None, :])
        gl_tma.store_wait(0)            # shared memory outlives the stores only while the program runs

    # a partition's function takes only tensors: its constexprs are bound here, one function each
    @gluon.jit
    def _gm_consumer_n0(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items):
        _gm_consume(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items, False, 0)

    @gluon.jit
    def _gm_consumer_n1(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items):
        _gm_consume(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items, False, 1)

    @gluon.jit
    def _gm_consumer_t0(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items):
        _gm_consume(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items, True, 0)

    @gluon.jit
    def _gm_consumer_t1(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items):
        _gm_consume(a, b, c, rd, em, cd, C, te, tr, offsets, N, KD, scr, num_n, n_items, True, 1)

    @gluon.jit
    def _gm_producer_n(ad, bd, a, b, rd, em, te, tr, offsets, N, KD, num_n, n_items):
        _gm_produce(ad, bd, a, b, rd, em, te, tr, offsets, N, KD, num_n, n_items, False)

    @gluon.jit
    def _gm_producer_t(ad, bd, a, b, rd, em, te, tr, offsets, N, KD, num_n, n_items):
        _gm_produce(ad, bd, a, b, rd, em, te, tr, offsets, N, KD, num_n, n_items, True)

    @gluon.jit
    def _grouped_mm_hopper_kernel(
        Am, B, C, tile_expert, tile_row0, offsets,   # Am (R, KD) grouped order; B (E, KD, N), or (E, N, KD) with TRANS_B; C (R, N)
        R, N, KD, E, stride_cr,
        BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr, NB: gl.constexpr,
        TRANS_B: gl.constexpr, CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr,
    ):
        dt: gl.constexpr = Am.dtype.element_ty
        HALF: gl.constexpr = BLOCK_M // 2
        a_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_M, BLOCK_K], dt)
        a_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_M, BLOCK_K], a_layout)
        a_desc = gl_tma.make_tensor_descriptor(Am, shape=[R, KD], strides=[KD, 1], block_shape=[BLOCK_M, BLOCK_K],
                                               layout=a_layout)
        if TRANS_B:
            b_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, BLOCK_K], dt)
            b_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_N, BLOCK_K], b_layout)
            b_desc = gl_tma.make_tensor_descriptor(B, shape=[E * N, KD], strides=[KD, 1],
                                                   block_shape=[BLOCK_N, BLOCK_K], layout=b_layout)
        else:
            b_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK_N], dt)
            b_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, BLOCK_N], b_layout)
            b_desc = gl_tma.make_tensor_descriptor(B, shape=[E * KD, N], strides=[N, 1],
                                                   block_shape=[BLOCK_K, BLOCK_N], layout=b_layout)
        c_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_N], dt)
        c_smem = gl.allocate_shared_memory(dt, [2, HALF, BLOCK_N], c_layout)   # a store buffer per consumer
        c_desc = gl_tma.make_tensor_descriptor(C, shape=[R, N], strides=[stride_cr, 1], block_shape=[HALF, BLOCK_N],
                                               layout=c_layout)
        ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for s in gl.static_range(STAGES):
            mbarrier.init(ready.index(s), count=1)   # the TMA bytes have landed
            mbarrier.init(empty.index(s), count=2)   # both consumers are done with the stage
        num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
        cargs = (a_smem, b_smem, c_smem, ready, empty, c_desc, C, tile_expert, tile_row0, offsets, N, KD, stride_cr,
                 num_n, n_items)
        pargs = (a_desc, b_desc, a_smem, b_smem, ready, empty, tile_expert, tile_row0, offsets, N, KD, num_n, n_items)
        if TRANS_B:
            gl.warp_specialize([(_gm_consumer_t0, cargs), (_gm_consumer_t1, cargs), (_gm_producer_t, pargs)],
                               [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
        else:
            gl.warp_specialize([(_gm_consumer_n0, cargs), (_gm_consumer_n1, cargs), (_gm_producer_n, pargs)],
                               [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])


# 3 stages of (128 + 256) x 64 x 2 bytes = 48 KB and two 32 KB store buffers: 208 KB, one program per
# SM. The consumers' 64 x 256 fp32 accumulators take 128 registers each
GM_CONFIG = dict(BLOCK_N=256, BLOCK_K=64, STAGES=3, CONSUMER_REGS=216, PRODUCER_REGS=72)


def _grouped_mm_hopper(a, b, c, r: Routing, trans_b):
    """c = grouped_mm(a, b, r, trans_b) by _grouped_mm_hopper_kernel."""
    (R, KD), (E, N) = a.shape, (b.shape[0], c.shape[1])
    _set_allocator()   # the TMA descriptors are built on the device
    items = r.tile_expert.numel() * cdiv(N, GM_CONFIG["BLOCK_N"])
    _grouped_mm_hopper_kernel[(_n_programs(a.device, items),)](
        a, b, c, r.tile_expert, r.tile_row0, r.offsets, R, N, KD, E, c.stride(0), BLOCK_M=BLOCK_M,
        NB=next_pow2(E), TRANS_B=trans_b, num_warps=4, **GM_CONFIG)


# The up-projection on sm_90, warp-specialised in Gluon like dA': a producer warpgroup gathers X's rows
# by cp.async and loads W1's gate and up blocks by TMA into a ring; two consumer warpgroups each
# multiply 64 of a tile's 128 rows by both blocks on wgmma (gate and up accumulators, 64 x 128 each)
# and hand them, rounded to h's dtype, to an epilogue warpgroup through shared memory; it computes
# a = silu(h_gate) * h_up from h as stored (backward recomputes the same a from the saved h) and writes
# h and a in coalesced rows while the consumers multiply the next item: 4-16% less time than
# _up_swiglu_kernel at h200_moe's layer shape and the paper's four, h and a bit for bit the same
# (docs/LOG.md, 2026-12-02), and 2-6% less again since the consumers take turns at a buffer half the
# size, which made room for a fourth ring stage (2026-12-03). Without that warpgroup (the consumers
# storing h and a from the MMA layout themselves) it was 5-30% slower (2026-12-01): the stores held
# the tensor cores.

HOPPER_UP = None  # None: on sm_90 where the operands allow it (_use_hopper_up); False: off; True: forced


def _use_hopper_up(x, w1):
    """Whether up_swiglu runs _up_hopper_kernel (_use_hopper): 16-bit operands of one dtype, TMA's rules
    on W1 (contiguous, a 16-byte aligned base, rows of 2n a multiple of 16 bytes) and rows of x that
    cp.async can copy (_rows_by_cp_async: d a multiple of 16)."""
    ok = (x.dtype == w1.dtype and x.dtype in (torch.bfloat16, torch.float16) and w1.is_contiguous()
          and w1.data_ptr() % 16 == 0 and w1.shape[2] % 8 == 0 and _rows_by_cp_async(x))
    return _use_hopper(HOPPER_UP, "HOPPER_UP", x, ok, "the Hopper up-projection needs an sm_90 GPU, Triton 3.6 or "
                       "newer with Gluon, 16-bit operands, a contiguous W1, and d and n multiples of 16 and 4")


if gluon is not None:

    @gluon.jit
    def _up_consume(g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, D, n_items,
                    HH: gl.constexpr):
        # one warpgroup: rows HH * HALF to (HH + 1) * HALF of every item, gate and up, into shared memory
        # for the epilogue warpgroup. The hand-over buffer holds one consumer's half: the two take turns,
        # consumer 0 first on each item
        STAGES: gl.constexpr = w_smem.type.shape[0] // 2
        BLOCK_K: gl.constexpr = w_smem.type.shape[1]
        BLOCK_N: gl.constexpr = w_smem.type.shape[2]
        HALF: gl.constexpr = g_smem.type.shape[1]
        mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 16])
        n_k = (D + BLOCK_K - 1) // BLOCK_K
        it = 0
        ti = 0   # items so far: the hand-over barriers' phase
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            acc_g = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
            acc_u = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
            for j in range(0, n_k):
                s = it % STAGES
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
                acc_g = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s), acc_g, is_async=True)
                acc_u = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s + 1), acc_u, is_async=True)
                # this step's two MMAs in flight: the last step's are done, so its buffers go back
                acc_g, acc_u = warpgroup_mma_wait(num_outstanding=2, deps=(acc_g, acc_u))
                if j > 0:
                    mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            acc_g, acc_u = warpgroup_mma_wait(num_outstanding=0, deps=(acc_g, acc_u))
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            # the epilogue has read what the buffer last held: consumer 1's last item (consumer 0; a new
            # barrier passes phase 1), or consumer 0's half of this one (consumer 1)
            if HH == 0:
                mbarrier.wait(epi_empty.index(1), (ti & 1) ^ 1)
            else:
                mbarrier.wait(epi_empty.index(0), ti & 1)
            e_smem.index(0).store(acc_g.to(e_smem.type.element_ty))
            e_smem.index(1).store(acc_u.to(e_smem.type.element_ty))
            _cta_barrier()                           # every thread's part stored before the hand-over
            mbarrier.arrive(epi_ready.index(HH), count=1)
            ti += 1

    UP_CHUNK = gl.constexpr(16)   # the up-projection's epilogue rows a step

    @gluon.jit
    def _up_epilogue(e_smem, epi_ready, epi_empty, H, A, tile_expert, tile_row0, offsets, N, stride_hr, stride_ar,
                     num_n, n_items):
        # h as the consumers rounded it, and a from it, UP_CHUNK rows at a time
        CHUNK: gl.constexpr = UP_CHUNK
        HALF: gl.constexpr = e_smem.type.shape[1]
        BLOCK_N: gl.constexpr = e_smem.type.shape[2]
        PER_HALF: gl.constexpr = HALF // CHUNK
        epi: gl.constexpr = gl.BlockedLayout([1, 8], [2, 16], [4, 1], [1, 0])
        rs = gl.arange(0, CHUNK, layout=gl.SliceLayout(1, epi))
        cs = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, epi))
        ti = 0
        for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            cols = pn * BLOCK_N + cs
            mcol = (cols < N)[None, :]
            for HH in gl.static_range(2):   # each consumer's half as it comes
                mbarrier.wait(epi_ready.index(HH), ti & 1)
                for q in gl.static_range(PER_HALF):
                    rows = row0 + HH * HALF + q * CHUNK + rs
                    mask = (rows < row_end)[:, None] & mcol
                    rows64 = rows.to(gl.int64)
                    g = e_smem.index(0).slice(q * CHUNK, CHUNK, dim=0).load(epi)
                    u = e_smem.index(1).slice(q * CHUNK, CHUNK, dim=0).load(epi)
                    hp = H + rows64[:, None] * stride_hr + cols[None, :]
                    gl.store(hp, g, mask=mask)
                    gl.store(hp + N, u, mask=mask)
                    gf = g.to(gl.float32)
                    a = gf * _sigmoid_approx(gf) * u.to(gl.float32)
                    gl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask)
                _cta_barrier()   # every thread has read the half before a consumer may overwrite it
                mbarrier.arrive(epi_empty.index(HH), count=1)
            ti += 1

    @gluon.jit
    def _up_consumer0(g, w, es, rt, rc, em, er, ee, D, n_items):
        _up_consume(g, w, es, rt, rc, em, er, ee, D, n_items, 0)

    @gluon.jit
    def _up_consumer1(g, w, es, rt, rc, em, er, ee, D, n_items):
        _up_consume(g, w, es, rt, rc, em, er, ee, D, n_items, 1)

    @gluon.jit
    def _up_hopper_kernel(
        X, W1, H, A, gather, tile_expert, tile_row0, offsets,   # as _up_swiglu_kernel's; W1 (E, d, 2n) contiguous
        N, D, E, stride_xt, stride_hr, stride_ar,
        BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr, NB: gl.constexpr,
        CONSUMER_REGS: gl.constexpr, EPILOGUE_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr,
    ):
        dt: gl.constexpr = X.dtype.element_ty
        HALF: gl.constexpr = BLOCK_M // 2
        g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_K], dt)
        w_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK_N], dt)
        g_smem = gl.allocate_shared_memory(dt, [2 * STAGES, HALF, BLOCK_K], g_layout)     # gathered X, a half each
        w_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, BLOCK_N], w_layout)  # W1's gate and up blocks
        # the hand-over buffer, in h's dtype: one consumer's gate and up (32 KB). Both consumers' at once
        # left room for 3 stages, and the kernel took 2-6% longer (docs/LOG.md, 2026-12-03)
        e_smem = gl.allocate_shared_memory(dt, [2, HALF, BLOCK_N], gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_N], dt))
        ready_t, ready_c, empty = _ws_ring(STAGES)
        epi_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())   # a consumer each
        epi_empty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(epi_ready.index(i), count=1)
            mbarrier.init(epi_empty.index(i), count=1)
        w_desc = gl_tma.make_tensor_descriptor(W1, shape=[E * D, 2 * N], strides=[2 * N, 1],
                                               block_shape=[BLOCK_K, BLOCK_N], layout=w_layout)
        num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
        cargs = (g_smem, w_smem, e_smem, ready_t, ready_c, empty, epi_ready, epi_empty, D, n_items)
        eargs = (e_smem, epi_ready, epi_empty, H, A, tile_expert, tile_row0, offsets, N, stride_hr, stride_ar,
                 num_n, n_items)
        pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, X, gather, tile_expert, tile_row0, offsets,
                 N, D, stride_xt, num_n, n_items, True)
        gl.warp_specialize([(_up_consumer0, cargs), (_up_consumer1, cargs), (_up_epilogue, eargs), (_ws_produce, pargs)],
                           [4, 4, WG_PRODUCER_WARPS], [CONSUMER_REGS, EPILOGUE_REGS, PRODUCER_REGS])


# 4 stages of 48 KB (X's 128 x 64 rows, W1's two 64 x 128 blocks) and the 32 KB hand-over buffer: 224 KB,
# one program per SM. The consumers' two 64 x 128 fp32 accumulators take 128 registers each
UP_CONFIG = dict(BLOCK_N=128, BLOCK_K=64, STAGES=4, CONSUMER_REGS=176, EPILOGUE_REGS=88, PRODUCER_REGS=72)


def _up_hopper(x, w1, r: Routing, h, a):
    """up_swiglu's h and a by _up_hopper_kernel."""
    E, d, n = w1.shape[0], w1.shape[1], w1.shape[2] // 2
    _set_allocator()   # W1's TMA descriptor is built on the device
    items = r.tile_expert.numel() * cdiv(n, UP_CONFIG["BLOCK_N"])
    _up_hopper_kernel[(_n_programs(x.device, items),)](
        x, w1, h, a, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, n, d, E, x.stride(0), h.stride(0),
        a.stride(0), BLOCK_M=BLOCK_M, NB=next_pow2(E), num_warps=4, **UP_CONFIG)


def wgrad(a, b, r: Routing, gather_a, gather_b, out_dtype=None, order=None, squares=False):
    """c (E, M, N): c_e = A_e^T @ B_e over expert e's rows, where a (., M) and b (., N) are read in
    grouped order or, with gather_a / gather_b, through r.gather_idx from token order. c is in a's
    dtype, or out_dtype (fp32 for fp32 master weights: the fp32 accumulator is stored as it is).
    sm_90 computes it by the warp-specialised kernel (HOPPER_WGRAD), elsewhere _wgrad_kernel;
    order: expert_order(r.offsets), which only that kernel reads, if the caller has it. With squares,
    (c, parts): fp32 partial sums whose total is c's sum of squares (of the fp32 accumulators, before
    a 16-bit c's rounding), one a tile, from the kernels' epilogues."""
    E, R = r.offsets.numel() - 1, r.gather_idx.numel()
    M, N = a.shape[1], b.shape[1]
    c = torch.empty(E, M, N, device=a.device, dtype=out_dtype or a.dtype)
    if _use_hopper_wgrad(a, b, gather_a, gather_b):
        parts = _wgrad_hopper(a, b, c, r, gather_a, order, squares)
        return (c, parts) if squares else c
    parts = None
    if squares:   # a slot a program at the smallest tiles the autotuner may pick; the slots left over stay 0
        bm, bn = (min(cfg.kwargs[k] for cfg in _wgrad_kernel.configs) for k in ("BLOCK_M", "BLOCK_N"))
        parts = torch.zeros(E * cdiv(M, bm) * cdiv(N, bn), device=a.device, dtype=torch.float32)
    rows = next_pow2(max(1, R // E))
    grid = lambda META: (E * cdiv(M, META["BLOCK_M"]) * cdiv(N, META["BLOCK_N"]),)
    tma = gather_a != gather_b and _use_tma(b if gather_a else a)
    _wgrad_kernel[grid](a, b, c, r.gather_idx, r.gather_idx, r.offsets, M, N, rows,
                        a.stride(0), b.stride(0), c.stride(0), c.stride(1),
                        GATHER_A=gather_a, GATHER_B=gather_b, DOT_PREC=_dot_prec(a.dtype), USE_TMA=tma, SQ=parts)
    return (c, parts) if squares else c


class GradSquares:
    """The expert weight gradients' sums of squares, as the weight-gradient kernels' epilogues leave
    them (wgrad's squares), so that a gradient norm need not read those gradients again: on h200_moe
    they are 94% of the parameters, and the norm read every fp32 gradient in ~2.3 ms a step. While
    GRAD_SQUARES holds one, moe_bwd_impl adds each weight gradient it writes. take(g) gives g's
    partial sums only while g is that tensor, unchanged: the same storage, held by a weak reference
    (a strong one would make autograd copy the gradient into .grad instead of taking it), and the
    same version. A gradient summed over micro-steps, all-reduced, scaled or copied fails the check,
    and its norm is read as before. Not under CUDA graphs (torch.compile's 'reduce-overhead'): the
    partial sums would be tensors in the graphs' memory pool that are not the graph's outputs."""

    def __init__(self):
        self.entries = {}   # StorageWeakRef of a gradient -> (its version and shape, its partial sums)
        self.taken = 0      # gradients whose sums take() has given, all told

    def add(self, grad, parts):
        self.entries[StorageWeakRef(grad.untyped_storage())] = (grad._version, grad.shape, parts)

    def take(self, grad):
        """grad's partial sums (their total is grad's sum of squares) if the kernels wrote grad and it
        has not changed since; else None."""
        entry = self.entries.pop(StorageWeakRef(grad.untyped_storage()), None)
        if entry is None or (grad._version, grad.shape) != entry[:2] or grad.storage_offset() or not grad.is_contiguous():
            return None
        self.taken += 1
        return entry[2]

    def clear(self):
        self.entries.clear()


GRAD_SQUARES: Optional[GradSquares] = None   # set by train.py; model.grad_norm takes its sums each step and clears it


def moe_bwd_impl(dout: torch.Tensor, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, h: torch.Tensor,
                 gather_idx: torch.Tensor, offsets: torch.Tensor, rev: torch.Tensor, tok_offsets: torch.Tensor,
                 tile_expert: torch.Tensor, tile_row0: torch.Tensor, row_score: torch.Tensor,
                 fp32_grads: bool = False) -> tuple[(torch.Tensor,) * 4]:
    """The layer's backward: dx, dw1, dw2 and the gradient of the pair scores (token order); with
    fp32_grads, dw1 and dw2 in fp32 whatever the weights' dtype."""
    r = Routing(gather_idx, offsets, rev, tok_offsets, tile_expert, tile_row0, row_score)
    dout, x, w1, w2 = dout.contiguous(), x.contiguous(), w1.contiguous(), w2.contiguous()
    dH, Ap, dscore = down_bwd(dout, w2, h, r)               # (R, 2n), (R, n) grouped order; (R,) pair order
    # dx first: dX~ (R, d) is summed into dx (T, d) and freed before the weight gradients are made. A step's memory
    # peaks in its first MoE layer's backward, where dX~ beside both fp32 weight gradients set h200_moe's peak: this
    # order took 0.33 GiB off it, the layer's time held (docs/LOG.md, 2026-12-07)
    dxr = grouped_mm(dH, w1, r, trans_b=True)                 # dX~ = dH @ W1_e^T (R, d)
    dx = gather_sum(dxr, r)                                   # (T, d)
    del dxr
    gdt = torch.float32 if fp32_grads else None
    # the Hopper kernel's tile order, made once for both weight gradients
    order = expert_order(offsets) if _use_hopper_wgrad(Ap, dout, False, True) else None
    sq = GRAD_SQUARES
    dw2 = wgrad(Ap, dout, r, gather_a=False, gather_b=True, out_dtype=gdt, order=order,    # dW2_e = A'_e^T @ dO[gather_e]
                squares=sq is not None)
    del Ap
    dw1 = wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=gdt, order=order,       # dW1_e = X[gather_e]^T @ dH_e
                squares=sq is not None)
    del dH
    if sq is not None:
        (dw1, parts1), (dw2, parts2) = dw1, dw2
        sq.add(dw1, parts1)
        sq.add(dw2, parts2)
    return dx, dw1, dw2, dscore


# -----------------------------------------------------------------------------
# The optimizer step (model.TritonAdamW): AdamW over fp32 master weights, one pass a parameter.

ADAMW_BLOCK = 1024


@triton.jit
def _adamw_kernel(TAB, n_tensors, SCALE, lr, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay,
                  G_TYPE: tl.constexpr, S_TYPE: tl.constexpr, C_TYPE: tl.constexpr, HAS_SCALE: tl.constexpr,
                  SEARCH: tl.constexpr, BLOCK: tl.constexpr):
    # torch's AdamW update, element by element, over many tensors in one launch: each program takes
    # BLOCK elements of one tensor. TAB holds 8 int64 a tensor: the addresses of p, grad, exp_avg,
    # exp_avg_sq, step and the copy (0: none), its size and its first program (ascending). With fp32
    # moments 16 bytes read and 12 written a parameter, the least the update can move; with bf16
    # moments 12 and 8. The moments are updated in fp32 and rounded once as they are stored. The step
    # counts and the clip's divisor are read on the device (no host sync)
    pid = tl.program_id(0)
    # the program's tensor: the last whose first program is at most pid, by SEARCH halvings (a tensor
    # of no elements has no programs, and is never the one found)
    lo = pid * 0   # tensors, even where n_tensors is 1 (a constant to Triton)
    hi = lo + n_tensors
    for _ in tl.static_range(SEARCH):
        mid = (lo + hi) // 2
        go = tl.load(TAB + mid.to(tl.int64) * 8 + 7) <= pid
        lo = tl.where(go, mid, lo)
        hi = tl.where(go, hi, mid)
    row = TAB + lo.to(tl.int64) * 8
    numel = tl.load(row + 6)
    offs = (pid - tl.load(row + 7)) * BLOCK + tl.arange(0, BLOCK)   # int64, as the table's entries
    mask = offs < numel
    P = tl.load(row).to(tl.pointer_type(tl.float32))
    G = tl.load(row + 1).to(tl.pointer_type(G_TYPE))
    M = tl.load(row + 2).to(tl.pointer_type(S_TYPE))
    V = tl.load(row + 3).to(tl.pointer_type(S_TYPE))
    STEP = tl.load(row + 4).to(tl.pointer_type(tl.float32))
    c = tl.load(row + 5)
    p = tl.load(P + offs, mask=mask)
    g = tl.load(G + offs, mask=mask).to(tl.float32)
    m = tl.load(M + offs, mask=mask).to(tl.float32)
    v = tl.load(V + offs, mask=mask).to(tl.float32)
    if HAS_SCALE:
        g = g / tl.load(SCALE)                  # the gradient clipped (model.clipped_fused_step)
    # 1 - beta^step in fp64: in fp32, beta2 = 0.999 rounds by 1.3e-5 of 1 - beta2, an error the
    # first steps' updates would carry
    step = tl.load(STEP).to(tl.float64)
    bias1 = (1.0 - tl.exp(step * tl.log(1.0 - tl.cast(one_minus_beta1, tl.float64)))).to(tl.float32)
    bias2 = (1.0 - tl.exp(step * tl.log(1.0 - tl.cast(one_minus_beta2, tl.float64)))).to(tl.float32)
    p = p * (1.0 - lr * weight_decay)           # decoupled weight decay
    m = m + one_minus_beta1 * (g - m)
    v = v * beta2 + one_minus_beta2 * g * g
    p = p - (lr / bias1) * m / (tl.sqrt(v) / tl.sqrt(bias2) + eps)
    tl.store(P + offs, p, mask=mask)
    if c != 0:  # the 16-bit copy the experts read: 2 bytes written here instead of a cast's 4 read and 2 written
        tl.store(c.to(tl.pointer_type(C_TYPE)) + offs, p.to(C_TYPE), mask=mask)
    tl.store(M + offs, m.to(S_TYPE), mask=mask)
    tl.store(V + offs, v.to(S_TYPE), mask=mask)


TL_TYPES = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


@torch.library.custom_op("sonic::adamw_", mutates_args=("params", "exp_avgs", "exp_avg_sqs", "steps", "copies"))
def adamw_(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
           exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], lr: float, beta1: float, beta2: float,
           eps: float, weight_decay: float, grad_scale: Optional[torch.Tensor],
           copies: list[Optional[torch.Tensor]]) -> None:
    """One AdamW step of each p in params, in place, as torch.optim.AdamW takes it: its step (a 0-d
    fp32 tensor on p's device) is counted up first; grad_scale (0-d, optional) divides the gradients.
    p (fp32), exp_avg and exp_avg_sq (both fp32 or both bf16) are contiguous tensors of one shape;
    grad fp32 or 16-bit. copies: one a parameter, None or a contiguous 16-bit tensor of its shape,
    overwritten with the updated parameter rounded to nearest, as p.to(dtype) gives (on a GPU;
    Triton's interpreter truncates to bf16). A registered op, so that torch.profiler ties the kernels
    to it (a launch outside any op is tied to none). One launch for all the tensors whose gradients,
    moments and copies share their dtypes (usually all of them), not one a tensor: over h200_moe's 87
    tensors the host's time for the step went from 3.8-4.1 to 2.0-2.6 ms, the device's 13.91 to 13.95
    (H200; docs/LOG.md, 2026-12-03). 1024-element programs: 13.2 ms for h200_moe's 1.93B parameters
    against 15.6 for torch's fused AdamW, 4.1 against 3.5 TB/s (docs/LOG.md, 2026-12-01); 8192 ran at
    17.1 ms. With bf16 moments 9.7 against 13.5 ms (docs/LOG.md, 2026-12-02)."""
    if len(copies) != len(params):
        raise ValueError(f"adamw_: {len(copies)} copies for {len(params)} parameters; give one (or None) a parameter")
    for i, (p, grad, exp_avg, exp_avg_sq) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):  # all checked before any update
        if not (p.dtype == torch.float32 and exp_avg.dtype == exp_avg_sq.dtype in (torch.float32, torch.bfloat16)
                and grad.dtype in TL_TYPES and p.is_contiguous() and exp_avg.is_contiguous()
                and exp_avg_sq.is_contiguous()
                and grad.shape == p.shape == exp_avg.shape == exp_avg_sq.shape):
            raise ValueError(f"adamw_: expected contiguous fp32 parameters, fp32 or bf16 states and gradients of their "
                             f"shapes; got {p.dtype} {tuple(p.shape)}, states {exp_avg.dtype} and {exp_avg_sq.dtype}, "
                             f"gradient {grad.dtype} {tuple(grad.shape)}")
        c = copies[i]
        if c is not None and not (c.dtype in (torch.bfloat16, torch.float16) and c.shape == p.shape and c.is_contiguous()):
            raise ValueError(f"adamw_: a parameter's copy must be a contiguous bf16 or fp16 tensor of its shape; got "
                             f"{c.dtype} {tuple(c.shape)} for {tuple(p.shape)}")
    if not params:
        return
    torch._foreach_add_(steps, 1)  # one launch for every count, as torch's AdamW does, not one a parameter
    grads = [g.contiguous() for g in grads]  # kept alive past the launches
    # the tensors of each launch, by (grad, moment, copy dtype); one without a copy takes the first copy's
    # dtype, so that it shares that launch (skipping the store at run time)
    first_copy = next((c.dtype for c in copies if c is not None), torch.bfloat16)
    launches = collections.defaultdict(list)
    for i, p in enumerate(params):
        if p.numel():
            c = copies[i]
            launches[(grads[i].dtype, exp_avgs[i].dtype, first_copy if c is None else c.dtype)].append(i)
    for (g_dtype, s_dtype, c_dtype), idx in launches.items():
        rows, first = [], 0
        for i in idx:
            p, c = params[i], copies[i]
            rows += [p.data_ptr(), grads[i].data_ptr(), exp_avgs[i].data_ptr(), exp_avg_sqs[i].data_ptr(),
                     steps[i].data_ptr(), 0 if c is None else c.data_ptr(), p.numel(), first]
            first += cdiv(p.numel(), ADAMW_BLOCK)
        table = torch.tensor(rows, dtype=torch.int64)
        if params[0].is_cuda:  # pinned, so the copy does not make the host wait for the device
            table = table.pin_memory().to(params[0].device, non_blocking=True)
        _adamw_kernel[(first,)](
            table, len(idx), steps[0] if grad_scale is None else grad_scale, lr, beta2, 1.0 - beta1, 1.0 - beta2, eps,
            weight_decay, G_TYPE=TL_TYPES[g_dtype], S_TYPE=TL_TYPES[s_dtype], C_TYPE=TL_TYPES[c_dtype],
            HAS_SCALE=grad_scale is not None, SEARCH=max(1, (len(idx) - 1).bit_length()), BLOCK=ADAMW_BLOCK, num_warps=4)


# -----------------------------------------------------------------------------
# Wiring. Each entry point is a torch.library custom op, which torch.compile traces as one opaque
# node whose fake function gives the output shapes, and an autograd.Function on the same impl,
# setup_context and backward, which eager mode runs.

def _custom_op(name, impl, fake, setup_context=None, backward=None, non_differentiable=()):
    """Registers impl as the op torch.ops.sonic.<name>, with its fake and, where differentiable,
    its autograd; returns the callable the module uses: the op while torch.compile traces, and in
    eager mode the autograd.Function (or, with no backward, impl itself). The eager path exists
    because the custom ops' dispatch is pure host cost: a forward+backward of the layer enqueued in
    1.96 ms this way against 2.25 ms through the ops (H200, torch 2.11, T=4096; docs/LOG.md,
    2026-11-29), and small layers are bound by the host. Both paths save exactly the same tensors
    and run the same kernels. non_differentiable: the indices of outputs that get no gradient."""
    op = torch.library.custom_op(f"sonic::{name}", mutates_args=())(impl)
    op.register_fake(fake)
    eager = impl
    if backward is not None:
        op.register_autograd(backward, setup_context=setup_context)

        def forward(ctx, *inputs):
            output = impl(*inputs)
            ctx.eager = True  # its backward may call the impls directly (_backward_op)
            setup_context(ctx, inputs, output)
            ctx.mark_non_differentiable(*(output[i] for i in non_differentiable))
            ctx.set_materialize_grads(False)  # no zero gradients built for the outputs left unused
            return output

        # built by type() so that the class, and the backward node autograd names after it
        # (sonic_<name>Backward, as profiles show it), carry the op's name
        Function = type(f"sonic_{name}", (torch.autograd.Function,),
                        dict(forward=staticmethod(forward), backward=staticmethod(backward)))
        eager = Function.apply
    traced = getattr(torch.ops.sonic, name)

    def call(*args):
        return traced(*args) if torch.compiler.is_compiling() else eager(*args)
    return call


def _backward_op(ctx, name):
    """The backward's op: the impl itself under the eager Function, and the custom op otherwise, since
    AOTAutograd traces the registered backward with fake tensors while torch.compiler.is_compiling()
    is False, and a Triton launch cannot read a fake tensor's data pointer."""
    return globals()[f"{name}_impl"] if getattr(ctx, "eager", False) else getattr(torch.ops.sonic, name)


# the fused router

def _router_fwd_fake(x, weight, bias, k, router, norm, router_dtype, aux_coef, z_coef, scores):
    T, E = x.shape[0], weight.shape[0]
    n_parts, dtype = _parts_layout(x, weight, router_dtype)
    f32 = dict(dtype=torch.float32)
    return (x.new_empty(T, k, dtype=torch.int64), x.new_empty(T, k, **f32), x.new_empty((), **f32),
            x.new_empty(E, dtype=torch.int64), x.new_empty(T, **f32), x.new_empty(T, **f32),
            weight.new_empty(*((0,) if (n_parts, dtype) == (1, weight.dtype) else (n_parts * E, weight.shape[1])),
                             dtype=dtype), x.new_empty(E if scores else 0, T, **f32),
            x.new_empty(E if scores else 0, T, dtype=torch.bool))


def _router_bwd_fake(x, w, idx, gates, lse, ssum, counts, dgates, dloss, dscores, router, norm, aux_coef, z_coef):
    E, d = counts.shape[0], x.shape[1]
    return torch.empty_like(x), x.new_empty(E, d, dtype=torch.float32)


def _router_setup(ctx, inputs, output):
    x, weight, bias, k, router, norm, router_dtype, aux_coef, z_coef, scores = inputs
    idx, gates, loss, counts, lse, ssum, w, S, chosen = output
    # MEMORY CONTRACT: x (the layer's input, which the experts keep too), the weight as the GEMM read it
    # (a copy of O(E d) under bf16x2: keeping it spares backward a launch) and O(T*K) routing state; the
    # (T, E) logits and probabilities (token rounding's scores too) are recomputed in backward, never kept
    ctx.save_for_backward(x, w if w.numel() else weight, idx, gates, lse, ssum, counts)
    ctx.args = (router, norm, aux_coef, z_coef)
    ctx.weight_dtype = weight.dtype


def _router_backward(ctx, didx, dgates, dloss, dcounts, dlse, dssum, dw_parts, dscores, dchosen):
    x, w, idx, gates, lse, ssum, counts = ctx.saved_tensors
    dgates = torch.zeros_like(gates) if dgates is None else dgates
    dscores = dscores if dscores is not None and dscores.numel() else None
    dx, dw = _backward_op(ctx, "router_bwd")(x, w, idx, gates, lse, ssum, counts, dgates, dloss, dscores, *ctx.args)
    return dx, dw.to(ctx.weight_dtype), None, None, None, None, None, None, None, None


_custom_op("router_bwd", router_bwd_impl, _router_bwd_fake)
_router_fwd = _custom_op("router_fwd", router_fwd_impl, _router_fwd_fake, _router_setup, _router_backward,
                         non_differentiable=(0, 3, 4, 5, 6, 8))  # idx, counts, lse, ssum, the weight's parts, chosen


def router(x, weight, bias, k, router_type, norm, router_dtype, aux_coef=0.0, z_coef=0.0, scores=False):
    """The whole router, its losses included, in three kernels, a GEMM and a sum forward, a kernel and
    three GEMMs backward. x (T, d) in the activation dtype, weight (E, d) (fp32), bias (E,) the sigmoid
    router's balancing bias. Returns idx (T, k) int64, gates (T, k) fp32, loss () fp32 and counts (E,)
    int64, the tokens that chose each expert. loss is MoE.router_losses': aux_coef * E * sum_e f_e P_e
    (f_e the fraction of the T*k pairs routed to e, P_e the mean over tokens of e's softmax over all E,
    or of its row-normalised sigmoid) + z_coef * mean_t logsumexp(logits_t)^2. With scores, two more for
    token rounding (round_pairs): the score matrix, route_topk's probs transposed (E, T) fp32 (the softmax
    over all E, or the sigmoids), and the choice as an (E, T) bool mask. gates, loss and the scores are
    differentiable in x and weight; the scores are written once and not kept (backward recomputes them
    with the logits)."""
    if router_type not in ROUTER_CODES or router_dtype not in ("bf16x2", "bf16", "fp32"):
        raise ValueError(f"router: router_type={router_type!r}, router_dtype={router_dtype!r}; see moe.py's "
                         f"ROUTER_TYPES and ROUTER_DTYPES")
    if not 1 <= k <= weight.shape[0] or x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"router: x {tuple(x.shape)}, weight {tuple(weight.shape)}, k={k}")
    args = (x.contiguous(), weight, bias.float().contiguous(), k, ROUTER_CODES[router_type], bool(norm), router_dtype,
            float(aux_coef), float(z_coef), bool(scores))
    idx, gates, loss, counts, *_, S, chosen = _router_fwd(*args)
    return (idx, gates, loss, counts, S, chosen) if scores else (idx, gates, loss, counts)


# token rounding: the pair scores' gradient goes back to the gates and the scores they came from

def _round_pairs_fake(idx, gates, scores, chosen, choices, tile, mode):
    (T, K), E = idx.shape, scores.shape[0]
    R_max = round_capacity(T, E, K, tile, mode)
    i64 = dict(dtype=torch.int64)
    return (idx.new_empty(R_max), idx.new_empty(R_max), gates.new_empty(R_max), chosen.new_empty(E, T),
            idx.new_empty(3, E, **i64), idx.new_empty(R_max))


def _round_pairs_bwd_fake(src, dscore, T, K, E):
    return dscore.new_empty(T, K), dscore.new_empty(E, T)


def _round_pairs_setup(ctx, inputs, output):
    idx, gates, scores = inputs[:3]
    ctx.save_for_backward(output[5])    # the sources, O(T*K + E*tile) int64: nothing (T, E) is kept
    ctx.shape = (idx.shape[0], idx.shape[1], scores.shape[0])


def _round_pairs_backward(ctx, dtok, dexp, dscore, dsel, dload, dsrc):
    if dscore is None:
        return (None,) * 7
    dg, ds = _backward_op(ctx, "round_pairs_bwd")(ctx.saved_tensors[0], dscore.contiguous(), *ctx.shape)
    return None, dg, ds, None, None, None, None


_custom_op("round_pairs_bwd", round_pairs_bwd_impl, _round_pairs_bwd_fake)
_round_pairs = _custom_op("round_pairs", round_pairs_impl, _round_pairs_fake, _round_pairs_setup,
                          _round_pairs_backward, non_differentiable=(0, 1, 3, 4, 5))


def round_pairs(idx, gates, scores, chosen, choices, tile, mode):
    """moe.round_tokens on what router(..., scores=True) returns, in two kernels, a sum and a cumsum: per
    expert, its count rounded and its highest-ranked tokens taken by radix select (top-K's chosen
    first, each group by descending score, ties to the lower token), then the pair list built in
    token order from that selection, with no sort. idx, gates (T, K) top-K's; scores (E, T) fp32 >= 0
    and chosen (E, T) bool; choices (E,) int64 the tokens that chose each expert; tile and mode as
    GPTConfig's rounding_tile and rounding_mode. Returns pair_tok, pair_exp (R_max,) int64 and
    pair_score (R_max,) fp32, as round_tokens does (pair_score differentiable in gates and scores),
    then sel (E, T) bool, the selection, and load (3, E) int64: each expert's rounded count, dropped
    and added pairs. No host sync."""
    if mode not in ROUND_MODES or tile < 1:
        raise ValueError(f"round_pairs: rounding_mode={mode!r}, rounding_tile={tile}: choose a mode of "
                         f"{tuple(ROUND_MODES)} and a tile of at least 1")
    return _round_pairs(idx.contiguous(), gates.contiguous(), scores.contiguous(), chosen.contiguous(),
                        choices.contiguous(), int(tile), mode)[:5]


# the expert layer

def saved_bytes_formula(T, d, n, R, E, dtype_bytes):
    """The memory contract in bytes: what the forward saves for backward, weights aside."""
    x_and_h = T * d * dtype_bytes + R * 2 * n * dtype_bytes
    meta = 3 * R * 4 + (E + 1) * 4 + (T + 1) * 4 + 2 * _max_tiles(R, E) * 4  # gather_idx, rev, row_score; offsets; tok_offsets; tile map
    return x_and_h + meta


def _moe_fwd_fake(x, w1, w2, pair_tok, pair_exp, pair_score, master_w1=None, master_w2=None):
    T, d = x.shape
    E, n = w2.shape[0], w2.shape[1]
    R = pair_exp.numel()
    i32 = dict(dtype=torch.int32)
    tiles = _max_tiles(R, E)
    return (x.new_empty(T, d), x.new_empty(R, 2 * n), x.new_empty(R, **i32), x.new_empty(E + 1, **i32),
            x.new_empty(R, **i32), x.new_empty(T + 1, **i32), x.new_empty(tiles, **i32), x.new_empty(tiles, **i32),
            x.new_empty(R, dtype=torch.float32))


def _moe_bwd_fake(dout, x, w1, w2, h, gather_idx, offsets, rev, tok_offsets, tile_expert, tile_row0, row_score,
                  fp32_grads=False):
    gdt = torch.float32 if fp32_grads else w1.dtype
    return (torch.empty_like(x), torch.empty_like(w1, dtype=gdt), torch.empty_like(w2, dtype=gdt),
            row_score.new_empty(h.shape[0]))


def _moe_setup_context(ctx, inputs, output):
    x, w1, w2, pair_tok, pair_exp, pair_score, *masters = inputs
    out, h, gather_idx, offsets, rev, tok_offsets, tile_expert, tile_row0, row_score = output
    # MEMORY CONTRACT: x, h (R x 2n) and O(R) metadata only; never the gathered X, a or y. The weights
    # saved are the ones the kernels read (with masters, their 16-bit copies, as autocast would keep)
    ctx.save_for_backward(x, w1, w2, h, gather_idx, offsets, rev, tok_offsets, tile_expert, tile_row0, row_score)
    ctx.score_dtype = pair_score.dtype
    ctx.n_inputs = len(inputs)
    ctx.masters = len(masters) == 2 and masters[0] is not None


def _moe_backward(ctx, dout, *_):
    dx, dw1, dw2, dscore = _backward_op(ctx, "moe_bwd")(dout, *ctx.saved_tensors, ctx.masters)
    if ctx.masters:  # the copies get nothing; the fp32 weights get the fp32 gradients
        return dx, None, None, None, None, dscore.to(ctx.score_dtype), dw1, dw2
    return (dx, dw1, dw2, None, None, dscore.to(ctx.score_dtype)) + (None,) * (ctx.n_inputs - 6)


_custom_op("moe_bwd", moe_bwd_impl, _moe_bwd_fake)
_moe_fwd = _custom_op("moe_fwd", moe_fwd_impl, _moe_fwd_fake, _moe_setup_context, _moe_backward,
                      non_differentiable=range(1, 9))    # h and the Routing fields


def _check_inputs(x, w1, w2, pair_tok, pair_exp, pair_score):
    if x.dim() != 2 or w1.dim() != 3 or w2.dim() != 3:
        raise ValueError(f"sonic: expected x (T, d), w1 (E, d, 2n), w2 (E, n, d); got {tuple(x.shape)}, "
                         f"{tuple(w1.shape)}, {tuple(w2.shape)}")
    T, d = x.shape
    E, n = w2.shape[0], w2.shape[1]
    if tuple(w1.shape) != (E, d, 2 * n) or tuple(w2.shape) != (E, n, d):
        raise ValueError(f"sonic: weight shapes {tuple(w1.shape)}, {tuple(w2.shape)} do not match x {tuple(x.shape)}")
    if d % 16 or n % 16:
        raise ValueError(f"sonic kernels need n_embd and expert_size to be multiples of 16 (tensor-core "
                         f"tiles); got n_embd={d}, expert_size={n}. Round them up, or use moe_backend='torch'.")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16) or w1.dtype != x.dtype or w2.dtype != x.dtype:
        raise ValueError(f"sonic: x, w1, w2 must share one dtype of fp32/fp16/bf16; got {x.dtype}, {w1.dtype}, {w2.dtype}")
    if pair_tok is None and pair_exp.numel() % max(T, 1):
        raise ValueError(f"sonic: pair_tok=None means R / T pairs a token, and R={pair_exp.numel()} is not a "
                         f"multiple of T={T}; pass pair_tok")
    tok_shape = pair_exp.shape if pair_tok is None else pair_tok.shape
    if not (tok_shape == pair_exp.shape == pair_score.shape) or pair_exp.dim() != 1:
        raise ValueError("sonic: pair_tok, pair_exp, pair_score must be 1-D and of one length")
    if T >= 2**31 or pair_exp.numel() >= 2**31:
        raise ValueError("sonic: T and the number of routed rows must stay below 2^31 (int32 indices)")


def moe_experts(x, w1, w2, pair_tok, pair_exp, pair_score, copies=None):
    """out[t] = sum over t's pairs (t, e, s) of s * SwiGLU_e(x[t]).
    x (T, d); w1 (E, d, 2n) [gate | up]; w2 (E, n, d); pair_tok / pair_exp / pair_score (R,) in
    token order, pair_exp == E marking an unused slot (token rounding); pair_tok None: R / T pairs
    a token, pair p being token p // (R / T)'s (plain top-K). Differentiable in x, w1,
    w2 and pair_score. Under autocast everything runs in the autocast dtype. copies: None, or
    16-bit tensors (c1, c2) equal to w1 and w2 rounded to the autocast dtype, which the caller keeps
    current (TritonAdamW writes them as it updates the weights); read in place of the cast."""
    masters = ()
    if torch.is_autocast_enabled(x.device.type):
        dt = torch.get_autocast_dtype(x.device.type)
        x = x.to(dt)
        if w1.dtype != dt or w2.dtype != dt:
            # fp32 master weights: the kernels read 16-bit copies made outside autograd, and backward stores the
            # weight gradients' fp32 accumulators straight into fp32 gradients. Through autograd's cast they
            # would be written in 16 bits, then read and written again in fp32: 4 bytes a parameter more
            masters = (w1, w2)
            if copies is not None and copies[0].dtype == copies[1].dtype == dt:
                w1, w2 = copies  # the cast reads 4 bytes a parameter and writes 2, every forward
            else:
                w1, w2 = w1.detach().to(dt), w2.detach().to(dt)
    _check_inputs(x, w1, w2, pair_tok, pair_exp, pair_score)
    if pair_exp.numel() == 0:  # no pair: every row an empty sum (the routing metadata's kernels need a pair)
        return x.new_zeros(x.shape)
    return _moe_fwd(x, w1, w2, pair_tok, pair_exp, pair_score, *masters)[0]
