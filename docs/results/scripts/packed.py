import triton
import triton.language as tl


@triton.jit
def _topk_rank_packed(work, cols, K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr):
    # one int64 max per round: the fp32 score's order-preserving int32 bits, then the reversed column
    b = work.to(tl.int32, bitcast=True)
    key32 = tl.where(b >= 0, b, b ^ 0x7FFFFFFF)
    key = (key32.to(tl.int64) << 32) | (BLOCK_E - 1 - cols)[None, :].to(tl.int64)
    rank = tl.full((BLOCK_T, BLOCK_E), -1, dtype=tl.int32)
    for k in tl.static_range(K):
        m = tl.max(key, axis=1)
        hit = key == m[:, None]
        rank = tl.where(hit, k, rank)
        key = tl.where(hit, -9223372036854775807, key)
    return rank


@triton.jit
def _router_fwd_packed(
    L, BIAS, IDX, G, LSE, SSUM, PSUM, CNT,  # logits (T, E) fp32, bias (E,); out: idx (T, K) int64, gates (T, K),
    T, E,                                   # lse (T,), sigmoid row sums (T,), and per program (programs, E): the
                                            # column sums of P (psum) and the tokens that chose each expert (cnt)
    stride_lt,                              # logits come as PARTS column blocks of E (logit_parts), summed here
    K: tl.constexpr, ROUTER: tl.constexpr, NORM: tl.constexpr, PARTS: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr,
):
    # ROUTER 0 softmax_topk: top-K of the logits, softmax over the K chosen (SonicMoE's default)
    #        1 topk_softmax: softmax over all E, top-K (the same choice: softmax is monotone), NORM renormalises
    #        2 sigmoid:      top-K of sigmoid + bias (DeepSeek-V3), gates are the chosen sigmoids renormalised
    # P, the score matrix of the balancing loss, is the softmax (0, 1) or the row-normalised sigmoid (2);
    # only its column sums leave the kernel.
    pid = tl.program_id(0)
    rows = pid * BLOCK_T + tl.arange(0, BLOCK_T)
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
    else:
        ssum = se
        work = logits
        P = ex / se[:, None]
    rank = _topk_rank_packed(work, cols, K, BLOCK_T, BLOCK_E)
    chosen = (rank >= 0) & mask_t[:, None]
    if ROUTER == 0:
        w = tl.where(chosen, ex, 0.0)       # the top logit is the row max, so the sum is >= 1
    elif ROUTER == 1:
        w = tl.where(chosen, P, 0.0)
    else:
        w = tl.where(chosen, s, 0.0)
    if ROUTER == 1 and not NORM:
        gates = w
    else:
        wsum = tl.sum(w, axis=1)
        gates = w / tl.where(wsum > 0, wsum, 1.0)[:, None]    # padded rows give 0
    out = rows[:, None].to(tl.int64) * K + rank
    tl.store(IDX + out, (cols[None, :] + tl.zeros_like(rank)).to(tl.int64), mask=chosen)
    tl.store(G + out, gates, mask=chosen)
    tl.store(LSE + rows, lse, mask=mask_t)
    tl.store(SSUM + rows, ssum, mask=mask_t)
    tl.store(PSUM + pid * E + cols, tl.sum(tl.where(mask, P, 0.0), axis=0), mask=mask_e)
    tl.store(CNT + pid * E + cols, tl.sum(chosen.to(tl.int32), axis=0), mask=mask_e)


