"""
The fine-grained Mixture-of-Experts layer: MoE(config), used as the feed-forward of model.py's GPT.

A router (MoE.router; fp32 weights and scores) picks top_k of n_expert SwiGLU experts of width expert_size per token.
Three interchangeable backends compute the experts:
  - "torch":      readable PyTorch, the numerical reference (groups tokens by expert, fp32 sum);
  - "sonic":      our Triton kernels (sonic_kernels.py), IO-aware, constant activation memory;
  - "grouped_mm": the torchtitan-style peer baseline on torch._grouped_mm (CUDA, Hopper only).
All three take the same routing: a flat list of (token, expert, score) pairs in token order.
In this file, in the order data takes: routing (route_topk, round_tokens), the expert backends,
expert parallelism (experts_ep, experts_ep_gather), and the MoE module that ties them together.
"""

import os

import torch
import torch.nn as nn
from torch.nn import functional as F

# torch 2.10 is the oldest checked: the tests pass on it and its Triton (3.6.0) builds every kernel. Older
# ones fail deep inside: 2.5 cannot register the kernels' custom ops, 2.8's Triton cannot build a TMA
# config for sm_90, and 2.9's Triton interprets tl.histogram wrong (the routing metadata on the CPU)
if tuple(int(v) for v in torch.__version__.split(".")[:2]) < (2, 10):
    raise ImportError(f"this repo needs torch 2.10 or newer (torch {torch.__version__} is installed): pip install -U torch")

try:  # the sonic backend needs triton; the torch reference does not
    import sonic_kernels
except ImportError:
    sonic_kernels = None

ROUTER_TYPES = ("softmax_topk", "topk_softmax", "sigmoid")
MOE_BACKENDS = ("torch", "sonic", "grouped_mm")
ROUNDING_MODES = ("nearest", "up", "down")
ROUTER_DTYPES = ("bf16x2", "bf16", "fp32")  # the sonic router's logits GEMM under bf16 (sonic_kernels.logit_parts)
EP_EXCHANGES = ("a2a", "gather")   # expert parallelism's token exchange: experts_ep, experts_ep_gather


def require_cuda(device, what, interpretable=False, sm80=False):
    """The one check for the paths that need a CUDA GPU: the sonic kernels (interpretable: they also
    run, slowly, in Triton's CPU interpreter under TRITON_INTERPRET=1) and grouped_mm. sm80: a GPU of
    compute capability 8.0 or newer, the least Triton supports (the scripts ask it for sonic; a layer's
    forward does not, to keep torch.compile's graph free of device queries). Raises a one-line error
    that says what to do instead."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{what} asked for CUDA, but this torch has no CUDA GPU "
                               f"({'a CPU build' if torch.version.cuda is None else 'no GPU visible'}): "
                               f"use device='cpu' with moe_backend='torch'")
        if sm80 and torch.version.hip is None:
            cc = torch.cuda.get_device_capability(device)
            if cc < (8, 0):
                raise RuntimeError(f"{what} needs an NVIDIA GPU of compute capability 8.0 or newer, the least Triton "
                                   f"supports, and the {torch.cuda.get_device_name(device)} is {cc[0]}.{cc[1]}: "
                                   f"use moe_backend='torch'")
        return
    if interpretable and os.environ.get("TRITON_INTERPRET") == "1":
        return
    raise RuntimeError(f"{what} needs a CUDA GPU and the device is {device.type!r}: use moe_backend='torch' "
                       f"here (sonic also runs, slowly, in Triton's CPU interpreter with TRITON_INTERPRET=1)")


def require_device(device):
    """The check that this torch can use `device` (the scripts' --device): a CUDA one as require_cuda says and by
    its index, any other by allocating on it, so that mps on Linux or cuda:7 on one GPU stops here with one line."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise RuntimeError(f"device={device!r} names no device: use 'cpu', 'cuda' or 'cuda:<index>'") from None
    if dev.type == "cuda":  # no allocation: under torchrun every rank would make a context on GPU 0 before its own
        require_cuda(device, f"device={device!r}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={device!r}, but {torch.cuda.device_count()} GPU(s) are visible: "
                               f"use 'cuda' or 'cuda:<index>' below that")
        return
    try:
        torch.empty(1, device=device)
    except RuntimeError as e:
        why = str(e).splitlines()[0] if e.args else type(e).__name__
        why = why if len(why) <= 100 else "this torch build cannot allocate memory there"  # torch's can list every backend
        raise RuntimeError(f"device={device!r}: {why}; use 'cpu', 'cuda' or 'cuda:<index>'") from None


class SwiGLU(nn.Module):
    """A dense SwiGLU MLP: the dense first layers and the shared experts."""

    def __init__(self, n_embd, hidden, bias):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 2 * hidden, bias=bias)  # [gate | up]
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)

    def forward(self, x):
        g, u = self.c_fc(x).chunk(2, dim=-1)
        return self.c_proj(F.silu(g) * u)


# -----------------------------------------------------------------------------
# Routing. Everything here is fp32 and runs on the device with no host sync.

def route_topk(logits, config, expert_bias=None):
    """Top-K selection and gate scores for the three router types.
    logits: (T, E) fp32. Returns idx (T, K) int64, gates (T, K) fp32, probs (T, E) fp32, where
    probs is the full score matrix used by the balancing loss and by token rounding."""
    K = config.top_k
    if config.router_type == "softmax_topk":
        # SonicMoE's default: choose on the logits, softmax over the K chosen ones
        probs = F.softmax(logits, dim=-1)
        top_logits, idx = torch.topk(logits, K, dim=-1)
        gates = F.softmax(top_logits, dim=-1)
    elif config.router_type == "topk_softmax":
        # Qwen3: softmax over all experts, then top-K, optionally renormalised
        probs = F.softmax(logits, dim=-1)
        gates, idx = torch.topk(probs, K, dim=-1)
        if config.norm_topk_prob:
            gates = gates / gates.sum(dim=-1, keepdim=True)
    else:
        # DeepSeek-V3: sigmoid affinities; the balancing bias steers selection but never the gates
        probs = torch.sigmoid(logits)
        sel = probs if expert_bias is None else probs + expert_bias
        idx = torch.topk(sel, K, dim=-1).indices
        gates = probs.gather(1, idx)
        gates = gates / gates.sum(dim=-1, keepdim=True)
    return idx, gates, probs


def round_tokens(idx, gates, probs, tile, mode):
    """Token rounding (SonicMoE section 5): round each expert's token count to a multiple of tile.
    Going down drops that expert's lowest-scoring chosen tokens; going up adds the highest-scoring
    tokens that did not choose it (scored from the full matrix probs). Each expert moves by at most
    one tile. Tokens then have a variable number of experts, so the result is a fixed-capacity pair
    list in token order (a token's pairs by expert), unused slots marked (token T, expert E). Its
    R_max slots are the most that mode can select: T*K plus, per expert, tile-1 (up), tile//2
    (nearest: it goes up only from a remainder of at least half a tile) or 0 (down); every slot
    costs metadata work and h rows.
    Only an expert's tile-1 lowest chosen and tile//2 (nearest) highest unchosen tokens can move,
    so two top-k per expert replace a sort of the whole (T, E) matrix, and the list is built from the
    T*K chosen pairs plus the added candidates, never by compacting (T, E). The first version (a (T, E)
    sort, a T*E compaction, and a (T*E)-indexed score whose backward serialised on one dump index)
    cost 1.7-5.5 ms a layer more than top-K at E=128-512 (docs/LOG.md, 2026-11-29). probs (T, E) is
    route_topk's. The sonic backend runs the same rule in its own kernels (sonic_kernels.round_pairs).
    Returns pair_tok, pair_exp (R_max,) int64, pair_score (R_max,) fp32, sel (T, E) bool (the
    selection) and chosen (T, E) bool (top-K's)."""
    T, E = probs.shape
    K, dev = idx.shape[1], probs.device
    f = torch.zeros(E, dtype=torch.long, device=dev).scatter_add_(0, idx.flatten(), torch.ones_like(idx.flatten()))
    lo, hi = (f // tile) * tile, ((f + tile - 1) // tile) * tile
    if mode == "down":
        c = lo
    elif mode == "up":
        c = hi
    else:  # nearest; ties go up
        c = torch.where(f - lo >= hi - f, hi, lo)
    c = torch.where(c > T, lo, c)                                       # an expert cannot take more than T
    n_drop, n_add = (f - c).clamp(min=0), (c - f).clamp(min=0)          # (E,) each; one of them is 0
    # expert-major (E, T) layout, so each expert's top-k runs along contiguous memory
    chosen = torch.zeros(E, T, dtype=torch.bool, device=dev).scatter_(0, idx.t(), True)   # (E, T)
    pd = probs.detach().t().contiguous()                                # (E, T)
    k_add = min({"up": tile - 1, "down": 0}.get(mode, tile // 2), T)   # the most an expert can add
    add = torch.arange(k_add, device=dev)[None, :] < n_add[:, None]     # (E, k_add): a real addition
    # drop: each expert's n_drop lowest-scoring chosen tokens (unchosen ones sort last as +inf);
    # at most tile-1, also when an expert is capped at T
    k_drop = min(tile - 1, T)
    low = torch.topk(torch.where(chosen, pd, float("inf")), k_drop, dim=1, largest=False).indices
    drop = torch.arange(k_drop, device=dev)[None, :] < n_drop[:, None]
    sel = chosen & ~torch.zeros_like(chosen).scatter_(1, low, drop)
    # add: each expert's n_add highest-scoring unchosen tokens (chosen ones sort last as -inf)
    high = torch.topk(torch.where(chosen, float("-inf"), pd), k_add, dim=1).indices     # (E, k_add)
    sel.scatter_(1, high, add | sel.gather(1, high))
    keep = sel.gather(0, idx.t()).t()                                   # (T, K): the chosen pair survives
    # the list: chosen pairs, then added candidates; sorted by (token, expert), unused slots last
    tok = torch.cat([torch.arange(T, device=dev).repeat_interleave(K), high.flatten()])
    exp = torch.cat([idx.flatten(), torch.arange(E, device=dev).repeat_interleave(k_add)])
    valid = torch.cat([keep.flatten(), add.flatten()])
    # the added scores, indexed: a gather would keep all of probs for its backward, indexing keeps the indices
    added_score = probs[high, torch.arange(E, device=dev)[:, None]].flatten()
    score = torch.cat([gates.flatten(), added_score])
    key, order = torch.sort(torch.where(valid, tok * (E + 1) + exp, T * (E + 1) + E))
    R_max = min(T * E, T * K + E * k_add)                               # valid pairs never exceed this
    key, order = key[:R_max], order[:R_max]
    pair_tok, pair_exp = key // (E + 1), key % (E + 1)
    pair_score = torch.where(valid, score, 0.0).gather(0, order)        # a permutation: its backward has no duplicates
    return pair_tok, pair_exp, pair_score, sel.t(), chosen.t()


# -----------------------------------------------------------------------------
# Expert backends. Each takes x (T, d), w1 (E, d, 2n) as [gate | up], w2 (E, n, d) and the pair
# list (token order; pairs with expert == E are unused slots) and returns sum_k s * expert(x) (T, d).

def experts_torch(x, w1, w2, pair_tok, pair_exp, pair_score):
    """The reference: group the pairs by expert, run each expert's SwiGLU MLP on its rows, then
    take the gate-weighted sum in fp32. Readable, with a loop over experts (never over tokens)."""
    T, E = x.shape[0], w1.shape[0]
    order = torch.argsort(pair_exp, stable=True)              # grouped order: pairs sorted by expert
    counts = torch.bincount(pair_exp, minlength=E + 1)[:E].tolist()  # host sync: fine for a reference
    routed = sum(counts)                                       # pairs of expert E (dropped) sort last
    rows = pair_tok[order[:routed]]
    # one gather for all experts, cut into their segments: a gather per expert gave its backward a zeroed
    # (T, d) gradient each, E of them a layer, and x[rows]'s backward (an accumulating index_put) is slower
    # on the CPU than index_select's (an index_add); the two took 15% of the CPU default config's training
    ys = []
    for e, xe in enumerate(torch.split(x.index_select(0, rows), counts)):  # xe: (count_e, d)
        g, u = (xe @ w1[e]).chunk(2, dim=-1)                   # (count_e, n) each
        ys.append((F.silu(g) * u) @ w2[e])                     # (count_e, d)
    y = torch.cat(ys).float() * pair_score[order[:routed], None].float()
    out = torch.zeros(T, x.shape[1], dtype=torch.float32, device=x.device)
    out.index_add_(0, rows, y)
    return out.to(x.dtype)


def experts_grouped_mm(x, w1, w2, pair_tok, pair_exp, pair_score):
    """The torchtitan-style peer baseline: sort, copy the gathered rows, two torch._grouped_mm
    calls, SwiGLU, and a weighted index_add. Needs CUDA (Hopper) and bf16."""
    require_cuda(x.device, "moe_backend='grouped_mm'")
    T, E = x.shape[0], w1.shape[0]
    order = torch.argsort(pair_exp, stable=True)
    counts = torch.zeros(E + 1, dtype=torch.int32, device=x.device).scatter_add_(
        0, pair_exp, torch.ones_like(pair_exp, dtype=torch.int32))[:E]
    offs = torch.cumsum(counts, 0, dtype=torch.int32)         # (E,) segment ends
    # unused slots (token rounding) sort past offs[-1], where _grouped_mm leaves its output rows
    # unset (they can hold NaN): they read and write spare rows T..T+S-1, dropped at the end, so
    # nothing from them reaches x, its gradient or the output, and top-K pays no masking pass.
    # S rows, not one: the gathered copy's backward adds up the duplicates of one index serially,
    # and the ~E*M_tile unused slots on a single spare row made the rounded backward collapse
    S = 256
    spare = T + torch.arange(order.numel(), device=x.device) % S
    rows = torch.where(pair_exp[order] < E, pair_tok[order], spare)
    dt = torch.bfloat16
    x_ext = torch.cat([x.to(dt), x.new_zeros(S, x.shape[1], dtype=dt)])  # (T+S, d)
    xs = x_ext[rows]                                          # (R, d) the gathered copy
    h = torch._grouped_mm(xs, w1.to(dt), offs=offs)           # (R, 2n)
    g, u = h.chunk(2, dim=-1)
    y = torch._grouped_mm((F.silu(g) * u).contiguous(), w2.to(dt), offs=offs)  # (R, d)
    y = y.float() * pair_score[order].float()[:, None]
    out = torch.zeros(T + S, x.shape[1], dtype=torch.float32, device=x.device).index_add_(0, rows, y)
    return out[:T].to(x.dtype)


def experts_sonic(x, w1, w2, pair_tok, pair_exp, pair_score, copies=None):
    if sonic_kernels is None:
        raise RuntimeError("moe_backend='sonic' needs triton (pip install triton); or use moe_backend='torch'")
    require_cuda(x.device, "moe_backend='sonic'", interpretable=True)
    return sonic_kernels.moe_experts(x, w1, w2, pair_tok, pair_exp, pair_score, copies)


EXPERT_BACKENDS = {"torch": experts_torch, "sonic": experts_sonic, "grouped_mm": experts_grouped_mm}


def experts_ep(x, w1, w2, pair_tok, pair_exp, pair_score, top_k, group, backend):
    """Expert parallelism: this rank holds experts [r*E_local, (r+1)*E_local) of every MoE layer.
    A token's row goes once to each rank that owns at least one of its experts, not once per expert.
    What this rank sends, by all_to_all_single, destination-major (the receiver's layout too):
      counts  (ep, 2) int64   for each rank: the pairs S_r and the rows U_r it gets from here;
      rows    (U, d)          x once per (token, destination rank), in the autocast dtype if any;
      pairs   (S, 2) int32    each pair's row (within its destination's block) and local expert;
      gates   (S,) fp32       each pair's score;
    and the reverse exchange brings back (U, d): each row's sum over that rank's experts, gated.
    The local experts run on the unique rows, with the pair list pointing into them, so the backend
    gathers each row for each of its experts and sums them (sonic: its gather-sum, the gate gradient
    as <dA', a>); home then adds up at most ep rows per token. The gate is applied where the expert
    runs, so the exchange carries its gradient home and no expert output is saved for backward.
    Autograd runs the same path backwards (all_to_all_single_autograd is differentiable).
    top_k: K when every token has exactly K pairs in order (plain top-K), else None."""
    import torch.distributed as dist
    import torch.distributed._functional_collectives as fc
    # wait_tensor: the result comes back as a lazy wrapper that waits only when a torch op touches
    # it, and a Triton kernel reads raw pointers, so wait here (autograd passes through the wait)
    def a2a(t, out_splits, in_splits):
        return fc.wait_tensor(fc.all_to_all_single_autograd(t, out_splits, in_splits, group))
    if torch.is_autocast_enabled(x.device.type):  # the experts cast to bf16 anyway: send bf16 rows, not fp32
        x = x.to(torch.get_autocast_dtype(x.device.type))
    ep, E_local = dist.get_world_size(group), w1.shape[0]
    T, d = x.shape
    dev = x.device
    dest = torch.clamp(pair_exp // E_local, max=ep)           # unused slots (expert E) go to "rank ep"
    order = torch.argsort(dest, stable=True)                  # pairs by destination rank, in token order within
    # hit[r, t]: token t has a pair on rank r (an extra row and column take the unused slots: token T, rank ep)
    hit = torch.zeros(ep + 1, T + 1, dtype=torch.bool, device=dev)
    hit[dest, pair_tok] = True
    hit = hit[:ep, :T]                                        # (ep, T)
    n_pairs = torch.zeros(ep + 1, dtype=torch.long, device=dev).scatter_add_(0, dest, torch.ones_like(dest))[:ep]
    send = torch.stack([n_pairs, hit.sum(1)], 1)              # (ep, 2): pairs, unique rows for each rank
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)           # the counts go first
    counts = torch.cat([send, recv]).tolist()                 # the one host sync: the collectives need sizes
    pair_send, row_send = [c[0] for c in counts[:ep]], [c[1] for c in counts[:ep]]
    pair_recv, row_recv = [c[0] for c in counts[ep:]], [c[1] for c in counts[ep:]]
    S, U, Rp, Ur = sum(pair_send), sum(row_send), sum(pair_recv), sum(row_recv)
    rows = torch.nonzero_static(hit.reshape(-1), size=U).squeeze(1)  # (U,) r*T + t of each row, no sync
    row_tok = rows % T
    idx = order[:S]                                           # (S,) the sent pairs, destination-major
    # each pair's row within its destination's block: the rows of a block are its tokens in order
    pair_row = (hit.cumsum(1) - 1)[dest[idx], pair_tok[idx]]
    meta = torch.stack([pair_row, pair_exp[idx] % E_local], 1).to(torch.int32)  # (S, 2)
    meta_recv = torch.empty(Rp, 2, dtype=torch.int32, device=dev)
    dist.all_to_all_single(meta_recv, meta, pair_recv, pair_send, group=group)
    x_recv = a2a(x[row_tok], row_recv, row_send)                                   # (Ur, d)
    s_recv = a2a(pair_score[idx].float().contiguous(), pair_recv, pair_send)      # (Rp,)
    # rows index the receive buffer: add the start of each sender's block. Blocks come in rank order
    # and rows in token order within each, so the pairs stay sorted by row (the backends' token order)
    row_start = torch.cumsum(recv[:, 1], 0) - recv[:, 1]
    pair_row_local = meta_recv[:, 0].long() + torch.repeat_interleave(row_start, recv[:, 0], output_size=Rp)
    pair_exp_local = meta_recv[:, 1].long()
    if Rp > 0:  # the local experts on the unique rows: each row's sum over its experts, gates applied (Ur, d)
        y_recv = EXPERT_BACKENDS[backend](x_recv, w1, w2, pair_row_local, pair_exp_local, s_recv)
    else:
        y_recv = x_recv * s_recv[:, None].to(x_recv.dtype)  # keeps the graph; nothing to compute
    y = a2a(y_recv.contiguous(), row_send, row_recv)        # (U, d) summed rows, back home
    # index_put_ saves only the indices for backward; index_copy and index_add_ would save their
    # (U, d) source as well
    if top_k is not None:
        # a token has at most m rows back, one per rank it reached: each takes its own slot of a
        # zeroed (T, m, d), and a sum over the slots adds them in a fixed order, with no accumulate
        m = min(top_k, ep)
        slot = (hit.cumsum(0) - 1)[rows // T, row_tok]       # (U,) the row's rank among its token's
        return y.new_zeros(T * m, d).index_put_((row_tok * m + slot,), y).view(T, m, d).sum(1)
    # token rounding: a token can reach any number of ranks, so each row is added to its token
    out = torch.zeros(T, d, dtype=torch.float32, device=dev)
    return out.index_put_((row_tok,), y.float(), accumulate=True).to(x.dtype)


def experts_ep_gather(x, w1, w2, pair_exp, pair_score, top_k, group, backend, chunks=1):
    """Expert parallelism with static sizes: every rank's tokens go to every rank of the group by an
    all-gather, each rank runs its own experts on the pairs that chose them (the others marked
    unused, expert E_local), and a reduce-scatter sums each token's rows from all ranks back home.
    No size is exchanged, so nothing waits on the host (experts_ep reads the split sizes on the host
    once a layer) and torch.compile can trace it; the price is rows that travel to ranks holding
    none of their experts: (ep - 1) * T rows out of a rank where experts_ep sends each token to the
    ranks it chose, about (ep - 1) * T * (1 - (1 - 1/ep)^K) (the same at ep = 2 for top-8: 99.6%).
    Plain top-K only (top_k pairs a token, in token order): token rounding gives each rank a
    different number of pairs. Autograd runs it backwards: the all-gather's gradient is a
    reduce-scatter and the other way round, so the gate's gradient goes home too.
    chunks > 1 cuts the tokens into that many pieces, equal to a token: a piece's all-gathers are
    issued before the piece ahead of it runs its experts, and the reduce-scatters are waited for
    only at the end, so the collectives of one piece run while the experts compute another. Every
    rank cuts alike, since every rank has the same T."""
    import torch.distributed as dist
    import torch.distributed._functional_collectives as fc
    if dist.get_backend(group) == "gloo":
        # the CPU's gloo: torch's functional all-gather and reduce-scatter corrupt the heap there now
        # and then (a two-process loop of this function crashed in 6 runs of 6, SIGSEGV or "malloc():
        # unaligned tcache chunk", docs/LOG.md 2026-12-02), so the same collectives run synchronously
        gather, scatter = _GlooAllGather.apply, _GlooReduceScatter.apply
        gather_ids, wait = _GlooAllGather.apply, lambda t: t
    else:
        # the single-tensor names arrived in torch 2.13; before, the same collectives had the _tensor names
        gather = getattr(fc, "all_gather_single_autograd", None) or fc.all_gather_tensor_autograd
        scatter = getattr(fc, "reduce_scatter_single_autograd", None) or fc.reduce_scatter_tensor_autograd
        gather_ids, wait = fc.all_gather_tensor, fc.wait_tensor
    if torch.is_autocast_enabled(x.device.type):  # the experts cast to bf16 anyway: send bf16 rows, not fp32
        x = x.to(torch.get_autocast_dtype(x.device.type))
    ep, r, E_local = dist.get_world_size(group), dist.get_rank(group), w1.shape[0]
    T = x.shape[0]
    chunks = max(1, min(chunks, T))
    bounds = [T * i // chunks for i in range(chunks + 1)]                            # token bounds of the pieces

    def issue(i):  # a piece's three all-gathers, not waited for: (ep*Tp, d) rank-major, (ep*Tp*K,) twice
        a, b = bounds[i] * top_k, bounds[i + 1] * top_k
        return (gather(x[bounds[i]:bounds[i + 1]].contiguous(), 0, group),
                gather_ids(pair_exp[a:b].contiguous(), 0, group),
                gather(pair_score[a:b].float().contiguous(), 0, group))

    outs, ahead = [], issue(0)
    for i in range(chunks):
        x_all, exp_all, s_all = (wait(t) for t in ahead)
        if i + 1 < chunks:
            ahead = issue(i + 1)                             # on the wire while this piece's experts run
        Tp = bounds[i + 1] - bounds[i]
        # this rank's pairs first, in token order; the others after them as unused slots (token ep*Tp,
        # expert E_local), the backends' convention: no token's sum reads them
        mine = exp_all // E_local == r
        order = torch.argsort(~mine, stable=True)
        tok_all = torch.arange(ep * Tp, device=x.device).repeat_interleave(top_k)
        pair_tok = torch.where(mine, tok_all, ep * Tp)[order]
        local_exp = torch.where(mine, exp_all - r * E_local, E_local)[order]
        y_all = EXPERT_BACKENDS[backend](x_all, w1, w2, pair_tok, local_exp, s_all[order])  # (ep*Tp, d), zero rows too
        if torch.is_grad_enabled() and not y_all.requires_grad:
            # no pair chose this rank's experts, and the backend gave constant zeros (the torch reference
            # does): zeros that depend on x and the gates keep this rank in backward's two collectives
            y_all = x_all * s_all.view(ep * Tp, top_k).sum(1, keepdim=True).to(x_all.dtype) * 0
        outs.append(scatter(y_all.contiguous(), "sum", 0, group))  # (Tp, d): all ranks' sum, waited below
    outs = [wait(o) for o in outs]
    return outs[0] if chunks == 1 else torch.cat(outs)


class _GlooAllGather(torch.autograd.Function):
    """all_gather along dim 0, done before it returns; its gradient is the reduce-scatter (sum).
    experts_ep_gather's collectives on gloo, with the functional collectives' arguments (the
    single-tensor names arrived in torch 2.13 here too)."""

    @staticmethod
    def forward(ctx, t, dim, group):
        import torch.distributed as dist
        ctx.group = group
        out = t.new_empty((t.shape[0] * dist.get_world_size(group),) + tuple(t.shape[1:]))
        (getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor)(out, t.contiguous(), group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _GlooReduceScatter.apply(grad, "sum", 0, ctx.group), None, None


class _GlooReduceScatter(torch.autograd.Function):
    """reduce_scatter (sum) along dim 0, done before it returns; its gradient is the all-gather."""

    @staticmethod
    def forward(ctx, t, op, dim, group):
        import torch.distributed as dist
        ctx.group = group
        out = t.new_empty((t.shape[0] // dist.get_world_size(group),) + tuple(t.shape[1:]))
        (getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor)(out, t.contiguous(), group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _GlooAllGather.apply(grad, 0, ctx.group), None, None, None


class MoE(nn.Module):
    """A fine-grained MoE feed-forward: fp32 router, top_k of n_expert SwiGLU experts."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        E, d, n = config.n_expert, config.n_embd, config.expert_size
        self.router = nn.Linear(d, E, bias=False)
        # stacked expert weights, laid out as the kernels read them: rows of x times w1[e]
        self.w1 = nn.Parameter(torch.empty(E, d, 2 * n))   # [gate | up] concatenated along the last dim
        self.w2 = nn.Parameter(torch.empty(E, n, d))
        nn.init.normal_(self.w1, std=0.02)  # GPT re-initialises these; this keeps MoE(config) usable alone
        nn.init.normal_(self.w2, std=0.02)
        self.shared = SwiGLU(d, config.n_shared_experts * n, config.bias) if config.n_shared_experts > 0 else None
        # DeepSeek-V3 balancing bias: selection only, updated outside autograd (update_expert_bias)
        self.register_buffer("expert_bias", torch.zeros(E), persistent=True)
        self.register_buffer("load_accum", torch.zeros(E), persistent=False)  # counted only for the bias update
        self.tokens_per_expert = torch.zeros(E, dtype=torch.long)   # of the last forward
        self.rounding_dropped = torch.zeros((), dtype=torch.long)    # chosen pairs dropped by rounding
        self.rounding_padded = torch.zeros((), dtype=torch.long)     # unchosen pairs added by rounding
        # both, without rounding: one zero made once, not a fill a forward (read, never written in place)
        self.register_buffer("no_rounding", torch.zeros((), dtype=torch.long), persistent=False)
        self.aux_loss = None
        # 16-bit copies of w1 and w2 that the sonic kernels read under autocast in place of casting the
        # fp32 weights every forward; set by GPT.keep_expert_copies, written by TritonAdamW. Not saved
        self.register_buffer("w1_copy", None, persistent=False)
        self.register_buffer("w2_copy", None, persistent=False)
        self.ep_group = None  # expert parallelism: set by GPT.setup_expert_parallel
        self.ep_exchange = "a2a"  # and its token exchange: EP_EXCHANGES
        self.ep_chunks = 1        # and the pieces the "gather" exchange overlaps with the experts

    def forward(self, x):
        cfg = self.config
        shape = x.shape
        x = x.reshape(-1, shape[-1])                                  # (T, d)
        T, E, K = x.shape[0], cfg.n_expert, cfg.top_k
        rounding = self.training and cfg.token_rounding
        sonic = cfg.moe_backend == "sonic"
        if cfg.moe_backend != "torch":
            require_cuda(x.device, f"moe_backend={cfg.moe_backend!r}", interpretable=sonic)
        if T == 0 and self.ep_group is None:
            # an empty batch: no token to route (the kernels' grids and the losses' means need one). Under
            # expert parallelism every rank still joins the exchanges, with nothing to send
            self.tokens_per_expert = torch.zeros(E, dtype=torch.long, device=x.device)
            self.rounding_dropped = self.rounding_padded = self.no_rounding
            if self.training:
                self.aux_loss = torch.zeros((), device=x.device)
            return (x * 0).reshape(shape)
        if sonic and torch.is_autocast_enabled(x.device.type):
            # one cast of the layer input, shared by the router and the experts: under autocast the
            # LayerNorm before this layer gives fp32, and keeping that would add a (T, d) fp32 tensor
            x = x.to(torch.get_autocast_dtype(x.device.type))
        with torch.autocast(device_type=x.device.type, enabled=False):
            fused_losses = None  # the fused router's router_losses, formed in its kernels
            fused = sonic and sonic_kernels is not None
            if fused:
                # the fused router: logits on tensor cores, one pass for the choice, the gates and the losses
                # (under rounding also the score matrix and the choice, expert-major), and a backward that
                # recomputes the logits
                idx, gates, losses, choices, *scores = sonic_kernels.router(
                    x, self.router.weight, self.expert_bias, K, cfg.router_type, cfg.norm_topk_prob, cfg.router_dtype,
                    cfg.aux_loss_coef, cfg.z_loss_coef, scores=rounding)
                p_mean = lse = None
                if cfg.aux_loss_coef or cfg.z_loss_coef:  # else router_losses' plain zero, which carries no graph
                    fused_losses = losses
            else:
                # the readable reference: fp32 logits, route_topk, the (T, E) matrices through autograd
                logits = F.linear(x.float(), self.router.weight.float())   # (T, E)
                idx, gates, probs = route_topk(logits, cfg, self.expert_bias)
                lse = torch.logsumexp(logits, dim=-1) if cfg.z_loss_coef > 0 else None
                p_mean = None
                if cfg.aux_loss_coef > 0:
                    p = probs / probs.sum(dim=-1, keepdim=True) if cfg.router_type == "sigmoid" else probs
                    p_mean = p.mean(0)
                ones = torch.ones(idx.numel(), dtype=torch.long, device=x.device)
                choices = torch.zeros(E, dtype=torch.long, device=x.device).scatter_add_(0, idx.flatten(), ones)
            if rounding:
                if T < cfg.rounding_tile:  # every count would round to 0 or to more than T: all dropped
                    raise ValueError(f"token rounding needs at least rounding_tile={cfg.rounding_tile} tokens a "
                                     f"forward, and this one has {T}: lower rounding_tile, raise batch_size or "
                                     f"block_size, or set token_rounding=False")
                if fused:  # sonic: the same rule in its kernels, on the router's (E, T) scores and choice
                    pair_tok, pair_exp, pair_score, _, load = sonic_kernels.round_pairs(
                        idx, gates, *scores, choices, cfg.rounding_tile, cfg.rounding_mode)
                    counts = load[0]                                      # the load after rounding
                    self.rounding_dropped, self.rounding_padded = load[1:].sum(1)
                else:
                    pair_tok, pair_exp, pair_score, _, _ = round_tokens(
                        idx, gates, probs, cfg.rounding_tile, cfg.rounding_mode)
                    # the load after rounding (the last bin counts unused slots); an expert either
                    # drops or adds, so the counts alone give both fractions, with no (T, E) pass
                    counts = torch.zeros(E + 1, dtype=torch.long, device=x.device).scatter_add_(
                        0, pair_exp, torch.ones_like(pair_exp))[:E]
                    self.rounding_dropped = (choices - counts).clamp(min=0).sum()
                    self.rounding_padded = (counts - choices).clamp(min=0).sum()
            else:
                # (T*K,) in token order. sonic's kernels take None for it (pair p is token p // K's): two
                # ops fewer a forward, where the small shapes wait on the host
                pair_tok = (None if sonic and self.ep_group is None else
                            torch.arange(T, device=x.device).repeat_interleave(K))
                pair_exp = idx.flatten()
                pair_score = gates.flatten()
                counts = choices
                self.rounding_dropped = self.rounding_padded = self.no_rounding
            self.tokens_per_expert = counts.detach()
            if self.training:  # balancing acts on the router's choices, before any rounding
                if cfg.router_type == "sigmoid" and cfg.bias_update_rate > 0:  # only the bias update reads it
                    self.load_accum += choices.detach().float()
                self.aux_loss = (fused_losses if fused_losses is not None else
                                 self.router_losses(p_mean, lse, choices, T * K))
        if self.ep_group is not None:
            fixed_k = None if rounding else K
            if self.ep_exchange == "gather":
                out = experts_ep_gather(x, self.w1, self.w2, pair_exp, pair_score, K, self.ep_group, cfg.moe_backend,
                                        self.ep_chunks)
            else:
                out = experts_ep(x, self.w1, self.w2, pair_tok, pair_exp, pair_score, fixed_k, self.ep_group,
                                 cfg.moe_backend)
        else:
            kw = dict(copies=(self.w1_copy, self.w2_copy)) if sonic and self.w1_copy is not None else {}
            out = EXPERT_BACKENDS[cfg.moe_backend](x, self.w1, self.w2, pair_tok, pair_exp, pair_score, **kw)
        if self.shared is not None:
            out = out + self.shared(x)
        return out.reshape(shape)

    def __getstate__(self):
        # copy.deepcopy and pickle (an EMA or averaged copy, a snapshot) read this; the last forward's losses
        # carry its autograd graph, which a copy cannot take, so the copy gets their values alone
        state = super().__getstate__()
        if state.get("aux_loss") is not None:
            state["aux_loss"] = state["aux_loss"].detach()
        return state

    def router_losses(self, p_mean, lse, counts, n_pairs):
        """Switch load-balancing loss E * sum_e f_e * P_e, where f_e is expert e's fraction of the routed
        pairs and P_e the mean over tokens of its score (the softmax over all E, or the row-normalised
        sigmoid), and the z-loss mean(logsumexp(logits)^2)."""
        cfg = self.config
        terms = []  # each op is a launch a layer, forward and backward: the terms take as few as they can
        if cfg.aux_loss_coef > 0:   # f_e = counts_e / n_pairs
            terms.append(torch.dot(counts.float(), p_mean) * (cfg.aux_loss_coef * cfg.n_expert / n_pairs))
        if cfg.z_loss_coef > 0:
            terms.append(lse.square().mean() * cfg.z_loss_coef)
        return sum(terms[1:], terms[0]) if terms else torch.zeros((), device=counts.device)

    @torch.no_grad()
    def update_expert_bias(self):
        """Aux-loss-free balancing (DeepSeek-V3): raise the bias of under-loaded experts and lower
        it for over-loaded ones, from the load seen since the last call. A no-op for other routers."""
        if self.config.router_type == "sigmoid" and self.config.bias_update_rate > 0:
            load = self.load_accum
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                load = load.clone()
                torch.distributed.all_reduce(load)
            self.expert_bias += self.config.bias_update_rate * torch.sign(load.mean() - load)
            self.load_accum.zero_()
