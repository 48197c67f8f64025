"""
The sonic kernels against plain PyTorch. On CPU they run in Triton's interpreter (fp32 and fp16,
tiny shapes); on a CUDA device the same file also checks bf16, larger shapes, the int64 offsets,
torch.compile and the absence of host syncs:
    python -m pytest -q tests/test_sonic.py        # on the GPU: the whole suite in bf16, fp16 and fp32
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import sonic_kernels as sk
from conftest import assert_rel, round_pairs_as_round_tokens
from model import GPTConfig
from moe import MoE, experts_torch, round_tokens, route_topk

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
# (dtype, relative tolerance). fp32 runs with TF32 off; the interpreter has no bf16 arithmetic; fp16 is
# train.py's --dtype=float16
DTYPES = [(torch.float32, 1e-5), (torch.float16, 5e-3)] + ([(torch.bfloat16, 1e-2)] if CUDA else [])


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def naive_moe(x, wr, w1, w2, K):
    """A per-token loop in float64: the plainest statement of the layer (softmax over the top-K)."""
    x, wr, w1, w2 = x.double(), wr.double(), w1.double(), w2.double()
    n = w2.shape[1]
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        logits = wr @ x[t]
        top, idx = torch.topk(logits, K)
        gates = torch.softmax(top, dim=0)
        for s, e in zip(gates, idx):
            h = x[t] @ w1[e]
            out[t] += s * ((F.silu(h[:n]) * h[n:]) @ w2[e])
    return out


def make_moe(T, d, n, E, K, dtype, backend, **kw):
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend=backend,
                    aux_loss_coef=0.0, **kw)
    moe = MoE(cfg).to(DEV)
    with torch.no_grad():  # weights large enough that every term matters
        moe.router.weight.normal_(0, 1.0 / math.sqrt(d))
        moe.w1.normal_(0, 1.0 / math.sqrt(d))
        moe.w2.normal_(0, 1.0 / math.sqrt(n))
    moe.w1.data, moe.w2.data = moe.w1.data.to(dtype), moe.w2.data.to(dtype)
    x = torch.randn(T, d, device=DEV, dtype=dtype, requires_grad=True)
    return moe, x


def grads_of(moe, x, g):
    """The output and the gradients of <out, g> for x and every weight."""
    out = moe(x)
    out.backward(g.to(out))
    return [out.detach(), x.grad, moe.w1.grad, moe.w2.grad, moe.router.weight.grad]


CASES = [  # (T, d, n, E, K)
    (37, 32, 16, 4, 2),     # T not a multiple of any block
    (1, 32, 16, 4, 1),      # T = 1, K = 1
    (20, 64, 32, 5, 5),     # K = E
    (3, 16, 16, 8, 1),      # most experts get no tokens
    (300, 48, 32, 4, 2),    # several M tiles (of 128 rows) per expert, d not a power of two
]
if CUDA:
    CASES += [(1000, 256, 128, 16, 4), (2049, 512, 256, 32, 8)]


@pytest.mark.parametrize("T,d,n,E,K", CASES)
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_sonic_matches_references(T, d, n, E, K, dtype, tol):
    sonic, x = make_moe(T, d, n, E, K, dtype, "sonic")
    ref, x_ref = make_moe(T, d, n, E, K, dtype, "torch")
    ref.load_state_dict(sonic.state_dict())
    x_ref.data.copy_(x.data)
    g = torch.randn(T, d, device=DEV)
    got = grads_of(sonic, x, g)
    want = grads_of(ref, x_ref, g)
    if (T, E) == (300, 4):  # the case of several M tiles: some expert must hold more than one
        assert sonic.tokens_per_expert.max() > 128
    names = ["out", "dx", "dw1", "dw2", "drouter"]
    for name, a, b in zip(names, got, want):
        assert torch.isfinite(a).all(), name
        if name == "drouter" and K == 1:
            # one expert per token: its gate is exactly 1, so the router gets no gradient
            assert a.abs().max() == 0 and b.abs().max() == 0
            continue
        assert_rel(a, b, tol, name)  # the torch backend in the same dtype is the close reference
    # and the float64 per-token loop is the exact one (output and dx, through autograd)
    wr = sonic.router.weight.detach().clone().requires_grad_()
    x64 = x.detach().double().requires_grad_()
    w1 = sonic.w1.detach().double().requires_grad_()
    w2 = sonic.w2.detach().double().requires_grad_()
    o64 = naive_moe(x64, wr, w1, w2, K) if T <= 300 else None
    if o64 is not None:
        o64.backward(g.to(o64))
        for name, a, b in zip(names, got, [o64, x64.grad, w1.grad, w2.grad, wr.grad]):
            if name == "drouter" and K == 1:
                continue
            assert_rel(a, b, tol, f"{name} vs float64")


@pytest.mark.skipif(not CUDA, reason="the interpreter carries one config a kernel, which every other test runs")
@pytest.mark.parametrize("tma", [None, False], ids=["tma-default", "pointers"])
def test_every_portable_config_matches_float64(monkeypatch, tma):
    # the autotuner keeps whichever config is fastest on the GPU at hand (on one with 99 KB of shared memory a
    # program, whichever fits), so each must be right: the portable kernels (no Hopper twins) at each of their
    # configs in turn, in bf16 against the float64 loop, at a shape with several M tiles an expert
    for flag in ("HOPPER_WGRAD", "HOPPER_DOWN_BWD", "HOPPER_GROUPED", "HOPPER_UP"):
        monkeypatch.setattr(sk, flag, False)
    monkeypatch.setattr(sk, "TMA", tma)
    kernels = [sk._up_swiglu_kernel, sk._grouped_mm_kernel, sk._down_bwd_kernel, sk._wgrad_kernel]
    T, d, n, E, K = 600, 96, 80, 4, 2
    configs = [k.configs for k in kernels]
    try:
        for i in range(max(map(len, configs))):
            for k, c in zip(kernels, configs):
                k.configs = [c[min(i, len(c) - 1)]]
                k.cache.clear()
            torch.manual_seed(i)
            moe, x = make_moe(T, d, n, E, K, torch.bfloat16, "sonic")
            g = torch.randn(T, d, device=DEV)
            got = grads_of(moe, x, g)
            ws = [t.detach().double().requires_grad_() for t in (moe.router.weight, x, moe.w1, moe.w2)]
            o64 = naive_moe(ws[1], ws[0], ws[2], ws[3], K)
            o64.backward(g.to(o64))
            want = [o64, ws[1].grad, ws[2].grad, ws[3].grad, ws[0].grad]
            for name, a, b in zip(["out", "dx", "dw1", "dw2", "drouter"], got, want):
                assert_rel(a, b, 1e-2, f"{name} against float64, config {i} of each kernel")
    finally:
        for k, c in zip(kernels, configs):
            k.configs = c
            k.cache.clear()   # later launches tune over the whole lists again


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_all_tokens_on_one_expert(dtype, tol):
    T, d, n, E, K = 40, 32, 16, 4, 1
    sonic, x = make_moe(T, d, n, E, K, dtype, "sonic")
    with torch.no_grad():
        sonic.router.weight.zero_()
        sonic.router.weight[2] = 1.0          # expert 2 wins for every token with a positive sum
        x.data = x.data.abs()
    ref, x_ref = make_moe(T, d, n, E, K, dtype, "torch")
    ref.load_state_dict(sonic.state_dict())
    x_ref.data.copy_(x.data)
    g = torch.randn(T, d, device=DEV)
    got, want = grads_of(sonic, x, g), grads_of(ref, x_ref, g)
    assert sonic.tokens_per_expert.tolist() == [0, 0, T, 0]
    for name, a, b in zip(["out", "dx", "dw1", "dw2"], got, want):
        assert_rel(a, b, tol, name)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_variable_experts_per_token(dtype, tol):
    """Token rounding gives each token a variable number of experts and leaves unused slots; the
    kernels and the gather-sum must take that as it is, with no padding copies."""
    T, d, n, E, K, tile = 60, 32, 16, 6, 2, 8
    x = torch.randn(T, d, device=DEV, dtype=dtype, requires_grad=True)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / math.sqrt(d)).to(dtype).requires_grad_()
    w2 = (torch.randn(E, n, d, device=DEV) / math.sqrt(n)).to(dtype).requires_grad_()
    logits = torch.randn(T, E, device=DEV, requires_grad=True)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n)
    idx, gates, probs = route_topk(logits, cfg)
    pair_tok, pair_exp, pair_score, sel, chosen = round_tokens(idx, gates, probs, tile, "nearest")
    assert (pair_exp == E).any() and sel.sum(1).max() != sel.sum(1).min()  # unused slots, varied counts
    res = []
    g = torch.randn(T, d, device=DEV, dtype=dtype)
    for fn in (sk.moe_experts, experts_torch):
        out = fn(x, w1, w2, pair_tok, pair_exp, pair_score)
        res.append([out] + list(torch.autograd.grad(out, (x, w1, w2, logits), g, retain_graph=True)))
    for name, a, b in zip(["out", "dx", "dw1", "dw2", "dlogits"], *res):
        assert_rel(a, b, tol, name)


@pytest.mark.parametrize("router_type", ["softmax_topk", "sigmoid"])
@pytest.mark.parametrize("mode,tile", [("nearest", 8), ("up", 16), ("down", 8), ("nearest", 1), ("up", 64)])
def test_round_pairs_matches_round_tokens(router_type, mode, tile):
    """The sonic backend's token rounding (a radix select per expert, then the list built from the
    selection) gives the same pair list, scores, selection and score gradients as round_tokens."""
    T, E, K = 150, 8, 2
    logits = (torch.randn(T, E, device=DEV) * 2).requires_grad_()
    with torch.no_grad():
        logits[:, 1] -= 1.5   # uneven counts: some experts go down, some up
    cfg = GPTConfig(n_embd=16, n_head=1, n_expert=E, top_k=K, expert_size=16, router_type=router_type)
    idx, gates, probs = route_topk(logits, cfg)
    want = round_tokens(idx, gates, probs, tile, mode)
    if tile > 1:
        assert (want[3] != want[4]).any(), "rounding changed nothing: the case is not exercised"
    assert_round_pairs_is_round_tokens(want, idx, gates, probs, tile, mode, logits)


def assert_round_pairs_is_round_tokens(want, idx, gates, probs, tile, mode, logits=None):
    """round_pairs gives want, round_tokens' list, selection and choice, exactly, and (given the logits
    they come from) the same gradient of the pair scores."""
    got = round_pairs_as_round_tokens(idx, gates, probs, tile, mode)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    if logits is not None:
        g = torch.randn(want[2].shape, device=DEV)
        ga, gb = (torch.autograd.grad(r[2], logits, g, retain_graph=True)[0] for r in (got, want))
        assert torch.equal(ga, gb)


def test_round_pairs_across_blocks():
    """The select walks each expert's tokens in blocks of ROUND_SELECT_BLOCK: additions that straddle
    a block boundary must land in order, after those of the earlier block."""
    B = sk.ROUND_SELECT_BLOCK
    T, E, K, tile = B + 500, 2, 1, 32
    idx = torch.zeros(T, K, dtype=torch.long, device=DEV)
    idx[:20] = 1                                  # expert 1: 20 tokens, rounds up to 32: adds 12
    probs = torch.rand(T, E, device=DEV) * 0.5
    probs[B - 6:B + 6, 1] += 0.5                  # its 12 best unchosen tokens straddle the boundary
    gates = torch.ones(T, K, device=DEV)
    want = round_tokens(idx, gates, probs, tile, "nearest")
    assert torch.equal(want[3][B - 6:B + 6, 1], torch.ones(12, dtype=torch.bool, device=DEV))
    assert_round_pairs_is_round_tokens(want, idx, gates, probs, tile, "nearest")


def test_round_pairs_across_expert_chunks():
    """The pair-list kernel walks a token's experts ROUND_PAIRS_E at a time and its tokens in blocks of
    ROUND_PAIRS_T: with E two and a half chunks and T past a block boundary, a token's pairs from
    different chunks must follow each other in expert order."""
    T, E, K, tile = 3 * sk.ROUND_PAIRS_T + 5, 2 * sk.ROUND_PAIRS_E + sk.ROUND_PAIRS_E // 2, 5, 8
    assert E > 2 * sk.ROUND_PAIRS_E and E % sk.ROUND_PAIRS_E
    logits = (torch.randn(T, E, device=DEV) * 2).requires_grad_()
    idx, gates, probs = route_topk(logits, GPTConfig(n_embd=16, n_head=1, n_expert=E, top_k=K, expert_size=16))
    want = round_tokens(idx, gates, probs, tile, "up")
    assert (want[3] != want[4]).any() and (want[3][:, 2 * sk.ROUND_PAIRS_E:] & ~want[4][:, 2 * sk.ROUND_PAIRS_E:]).any()
    assert_round_pairs_is_round_tokens(want, idx, gates, probs, tile, "up", logits)


def test_round_pairs_under_torch_compile():
    """torch.compile traces sonic's token rounding as the opaque op sonic::round_pairs, in one graph,
    and gets what eager mode gets, the scores' gradients too (aot_eager: no C++ compiler needed on
    the CPU)."""
    T, E, K = 150, 8, 2
    logits = (torch.randn(T, E, device=DEV) * 2).requires_grad_()
    idx, gates, probs = route_topk(logits, GPTConfig(n_embd=16, n_head=1, n_expert=E, top_k=K, expert_size=16))
    chosen = torch.zeros(E, T, dtype=torch.bool, device=DEV).scatter_(0, idx.t(), True)
    fn = lambda i, g, p: sk.round_pairs(i, g, p.t(), chosen, chosen.sum(1), 8, "nearest")
    torch._dynamo.reset()
    got = torch.compile(fn, fullgraph=True, backend="aot_eager")(idx, gates, probs)
    want = fn(idx, gates, probs)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    g = torch.randn(want[2].shape, device=DEV)
    ga, gb = (torch.autograd.grad(r[2], logits, g, retain_graph=True)[0] for r in (got, want))
    assert torch.equal(ga, gb)


@pytest.mark.skipif(CUDA, reason="checks the CPU error")
@pytest.mark.parametrize("extra", [{}, {"router_type": "sigmoid", "token_rounding": True, "rounding_tile": 8}],
                         ids=["topk", "rounding"])
def test_sonic_off_the_gpu_says_what_to_do(monkeypatch, extra):
    """Without a GPU or the interpreter, a sonic layer stops before any kernel with an error that
    names the fix (moe.require_cuda, the one home of that check)."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    cfg = GPTConfig(n_embd=16, n_head=1, n_expert=4, top_k=2, expert_size=16, moe_backend="sonic", **extra)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*moe_backend='torch'"):
        MoE(cfg).train()(torch.randn(32, 16))


def test_sonic_below_sm80_says_what_to_do(monkeypatch):
    # Triton supports NVIDIA GPUs of compute capability 8.0 and newer: on a T4 (7.5) the scripts stop with one line
    import moe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(RuntimeError, match=r"compute capability 8.0 or newer.*Tesla T4 is 7.5: use moe_backend='torch'"):
        moe.require_cuda("cuda", "moe_backend='sonic'", interpretable=True, sm80=True)
    moe.require_cuda("cuda", "moe_backend='grouped_mm'")     # the capability is asked for sonic only
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    moe.require_cuda("cuda", "moe_backend='sonic'", interpretable=True, sm80=True)


@pytest.mark.parametrize("T", [100, 2500])   # 2500: more than one 2048-token block per expert
def test_round_pairs_ties_go_to_lower_tokens(T):
    """With every score equal, the select still takes exactly each expert's rounded count: of the
    chosen it keeps the lowest token indices, of the unchosen it adds the lowest ones, as a stable sort
    would."""
    E, K, tile = 4, 1, 16
    idx = torch.arange(T, device=DEV)[:, None] % 3       # experts 0-2 share the tokens
    idx[:12] = 3                                           # expert 3: 12 tokens (rounds down to 0, or up to 16)
    probs = torch.full((E, T), 0.25, device=DEV)
    gates = torch.ones(T, K, device=DEV)
    chosen = torch.zeros(E, T, dtype=torch.bool, device=DEV).scatter_(0, idx.t(), True)
    f = chosen.sum(1)
    for mode, counts in (("down", torch.div(f, tile, rounding_mode="floor") * tile),
                         ("up", (f + tile - 1) // tile * tile)):
        pair_tok, pair_exp, _, sel, load = sk.round_pairs(idx, gates, probs, chosen, f, tile, mode)
        assert torch.equal(sel.sum(1), counts) and torch.equal(load[0], counts)
        assert torch.equal(load[1], (f - counts).clamp(min=0)) and torch.equal(load[2], (counts - f).clamp(min=0))
        for e in range(E):
            mine, others = chosen[e].nonzero().flatten(), (~chosen[e]).nonzero().flatten()
            kept = int(min(counts[e], f[e]))
            assert torch.equal(sel[e, mine], torch.arange(len(mine), device=DEV) < kept)
            n_add = int(counts[e] - kept)
            assert torch.equal(sel[e, others], torch.arange(len(others), device=DEV) < n_add)
            assert torch.equal(pair_tok[pair_exp == e], sel[e].nonzero().flatten())


def reference_metadata(pair_tok, pair_exp, pair_score, T, E):
    """routing_metadata's outputs from plain torch ops: a stable argsort, as the layer once did it."""
    R, bm = pair_exp.numel(), sk.BLOCK_M
    order = torch.argsort(pair_exp, stable=True)
    offsets = torch.searchsorted(pair_exp[order], torch.arange(E + 1, device=DEV))
    rev = torch.empty_like(order).scatter_(0, order, torch.arange(R, device=DEV))
    tok_offsets = torch.searchsorted(pair_tok, torch.arange(T + 1, device=DEV))
    tiles = (offsets[1:] - offsets[:-1] + bm - 1) // bm
    tile_end = torch.cumsum(tiles, 0)
    t = torch.arange(sk._max_tiles(R, E), device=DEV)
    tile_expert = torch.searchsorted(tile_end, t, right=True)
    ec = tile_expert.clamp(max=E - 1)
    tile_row0 = offsets[ec] + (t - (tile_end - tiles)[ec]) * bm
    return pair_tok[order], offsets, rev, tok_offsets, tile_expert, tile_row0, pair_score.float()[order]


@pytest.mark.parametrize("T,E,K,unused", [(300, 5, 2, 0.0), (70, 7, 3, 0.2), (100, 8, 1, 0.5), (1, 4, 1, 0.0),
                                          (1000, 16, 4, 0.1), (128, 4, 1, 0.0), (50, 300, 2, 0.0)])
def test_routing_metadata_matches_a_stable_argsort(T, E, K, unused):
    # the counting-sort kernels against the torch version they replaced: R not a multiple of the
    # 128-pair blocks, E + 1 at and past a power of two, unused slots, an expert with no rows; the
    # one launch after the cumsum with more token blocks (T + 1 offsets) or tile blocks (E = 300)
    # than pair blocks
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    idx[torch.rand(T, K, device=DEV) < unused] = E                                 # unused slots
    pair_tok, pair_exp = torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten()
    pair_score = torch.rand(T * K, device=DEV)
    got = sk.routing_metadata(pair_tok, pair_exp, pair_score, T, E)
    want = reference_metadata(pair_tok, pair_exp, pair_score, T, E)
    for name, a, b in zip(("gather_idx", "offsets", "rev", "tok_offsets", "tile_expert"), got, want):
        assert torch.equal(a.long(), b.long()), name
    n_tiles = int((want[4] < E).sum())                      # tile_row0 of surplus tiles is unused
    assert torch.equal(got[5][:n_tiles].long(), want[5][:n_tiles].long())
    assert torch.equal(got[6], want[6])
    # plain top-K's list (K pairs a token, in token order) given as None: the same Routing, bit for bit
    for a, b in zip(sk.routing_metadata(None, pair_exp, pair_score, T, E), got):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("E", [1, 5, 64, 130, 300])
def test_expert_order_matches_a_stable_descending_argsort(E):
    # the Hopper weight gradients' tile order: ties (many experts share a count), empty experts, and E
    # at, past and well past the kernel's 64-expert block
    rows = torch.randint(0, 6, (E,), device=DEV) * torch.randint(0, 2, (E,), device=DEV)
    offsets = torch.cat([rows.new_zeros(1), rows.cumsum(0)]).to(torch.int32)
    want = torch.argsort(rows, descending=True, stable=True)
    assert torch.equal(sk.expert_order(offsets).long(), want)


def test_custom_ops_match_eager_path():
    # eager mode runs the layer through autograd.Function; torch.compile sees the custom ops
    # sonic::moe_fwd / moe_bwd instead. Same kernels, so the same numbers; and the same with plain
    # top-K's pair list given as None
    T, d, n, E, K = 40, 32, 16, 5, 2
    logits = torch.randn(T, E, device=DEV, requires_grad=True)
    x = torch.randn(T, d, device=DEV, requires_grad=True)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / math.sqrt(d)).requires_grad_()
    w2 = (torch.randn(E, n, d, device=DEV) / math.sqrt(n)).requires_grad_()
    g = torch.randn(T, d, device=DEV)
    res = []
    for via_op in (False, True):
        for pair_tok in (torch.arange(T, device=DEV).repeat_interleave(K), None):  # None: K pairs a token
            top, idx = torch.topk(logits, K)
            gates = torch.softmax(top, -1)
            args = (x, w1, w2, pair_tok, idx.flatten(), gates.flatten())
            out = torch.ops.sonic.moe_fwd(*args)[0] if via_op else sk.moe_experts(*args)
            res.append([out] + list(torch.autograd.grad(out, (x, w1, w2, logits), g)))
    for r in res[1:]:
        for a, b in zip(res[0], r):
            assert torch.equal(a, b)


def test_fp32_master_weights_get_fp32_gradients():
    """Under autocast the experts run on 16-bit copies of fp32 weights, and the weight gradients come out of
    the kernels' fp32 accumulators as fp32, not as 16-bit gradients cast up: more bits than a 16-bit
    gradient has, float64's values, eager's and the custom op's (torch.compile) alike."""
    T, d, n, E, K = 70, 32, 16, 4, 2
    dt = torch.bfloat16 if CUDA else torch.float16
    x = torch.randn(T, d, device=DEV)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / math.sqrt(d)).requires_grad_()
    w2 = (torch.randn(E, n, d, device=DEV) / math.sqrt(n)).requires_grad_()
    idx = torch.stack([torch.randperm(E)[:K] for _ in range(T)]).to(DEV)
    pair_tok = torch.arange(T, device=DEV).repeat_interleave(K)
    score = torch.rand(T * K, device=DEV)
    g = torch.randn(T, d, device=DEV)

    def layer(x, w1, w2):
        with torch.autocast(DEV, dtype=dt):
            return sk.moe_experts(x, w1, w2, pair_tok, idx.flatten(), score)

    out = layer(x, w1, w2)
    dw1, dw2 = torch.autograd.grad(out, (w1, w2), g.to(out))
    assert out.dtype == dt and dw1.dtype == dw2.dtype == torch.float32
    # float64 on the 16-bit operands the kernels read
    x64, a1, a2 = (t.detach().to(dt).double().requires_grad_() for t in (x, w1, w2))
    ref = experts_torch(x64, a1, a2, pair_tok, idx.flatten(), score.double())
    r1, r2 = torch.autograd.grad(ref, (a1, a2), g.double())
    assert_rel(dw1, r1, 5e-3, "dw1")
    assert_rel(dw2, r2, 5e-3, "dw2")
    for dw in (dw1, dw2):  # stored in fp32: most values carry bits a 16-bit gradient would round away
        assert (dw.to(dt).float() != dw).float().mean() > 0.5
    torch._dynamo.reset()
    out_c = torch.compile(layer, fullgraph=True, backend="aot_eager")(x, w1, w2)
    for a, b in zip(torch.autograd.grad(out_c, (w1, w2), g.to(out_c)), (dw1, dw2)):
        assert a.dtype == torch.float32 and torch.equal(a, b)


def test_the_layer_reads_its_expert_copies():
    """MoE.w1_copy / w2_copy (GPT.keep_expert_copies, kept by TritonAdamW) stand in for the cast of the
    fp32 weights under autocast: copies equal to that cast give the same output and gradients bit for
    bit, eager and compiled; copies of other weights are what the kernels read (here the weights
    doubled, exact in any float format), while the fp32 weights still get the gradients."""
    T, d, n, E, K = 70, 32, 16, 4, 2
    dt = torch.bfloat16 if CUDA else torch.float16
    moe, x = make_moe(T, d, n, E, K, torch.float32, "sonic")
    g = torch.randn(T, d, device=DEV)

    def run(layer):
        for p in [x, *layer.parameters()]:
            p.grad = None
        with torch.autocast(DEV, dtype=dt):
            out = layer(x)
        out.backward(g.to(out))
        return [out.detach(), x.grad, layer.w1.grad, layer.w2.grad, layer.router.weight.grad]

    cast = run(moe)
    moe.w1_copy, moe.w2_copy = moe.w1.detach().to(dt), moe.w2.detach().to(dt)
    for a, b in zip(run(moe), cast):
        assert torch.equal(a, b)
    torch._dynamo.reset()
    for a, b in zip(run(torch.compile(moe, fullgraph=True, backend="aot_eager")), cast):
        assert torch.equal(a, b)
    moe.w1_copy, moe.w2_copy = (2 * moe.w1).detach().to(dt), (2 * moe.w2).detach().to(dt)
    doubled = copy.deepcopy(moe)
    doubled.w1_copy = doubled.w2_copy = None
    with torch.no_grad():
        doubled.w1.mul_(2)
        doubled.w2.mul_(2)
    got, want = run(moe), run(doubled)
    assert not torch.equal(got[0], cast[0])
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("gather_a", [True, False], ids=["dW1", "dW2"])
def test_wgrad_squares_sum_to_the_gradients_norm(gather_a):
    # wgrad's squares: partial sums from the kernel's epilogue whose total is the gradient's sum of
    # squares (against float64), the gradient itself unchanged; an expert with no rows, tiles past
    # M and N (d = 48, n = 40 are no multiples of the tiles)
    T, d, n, E, K = 300, 48, 40, 5, 2
    torch.manual_seed(0)
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    r = sk.routing_metadata(torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten(),
                            torch.rand(T * K, device=DEV), T, E)
    R = T * K
    if gather_a:   # dW1 = X[gather]^T @ dH
        a, b = torch.randn(T, d, device=DEV), torch.randn(R, 2 * n, device=DEV)
    else:          # dW2 = A'^T @ dO[gather]
        a, b = torch.randn(R, n, device=DEV), torch.randn(T, d, device=DEV)
    plain = sk.wgrad(a, b, r, gather_a=gather_a, gather_b=not gather_a)
    got, parts = sk.wgrad(a, b, r, gather_a=gather_a, gather_b=not gather_a, squares=True)
    assert torch.equal(got, plain) and parts.dtype == torch.float32
    assert_rel(parts.double().sum(), got.double().square().sum(), 1e-6, "sum of squares")


def test_grad_squares_stand_in_for_the_expert_gradients(monkeypatch):
    """With GRAD_SQUARES set, the layer's backward leaves each expert weight gradient's sum of squares,
    and model.grad_norm takes them for the gradients autograd put in .grad: the same norm as
    clip_grad_norm_'s, eager and compiled, fp32 weights and fp32 masters under autocast. A gradient
    changed after the kernel wrote it (summed over two backwards, or scaled in place) is read instead."""
    from model import grad_norm
    T, d, n, E, K = 70, 32, 16, 4, 2
    squares = sk.GradSquares()
    monkeypatch.setattr(sk, "GRAD_SQUARES", squares)
    dt = torch.bfloat16 if CUDA else torch.float16

    def backward(layer, autocast, zero=True):
        if zero:
            layer.zero_grad(set_to_none=True)
        with torch.autocast(DEV, dtype=dt, enabled=autocast):
            out = layer(x)
        out.float().square().sum().backward()
        params = list(moe.parameters())
        want = torch.nn.utils.get_total_norm([p.grad for p in params])
        taken = squares.taken
        got = grad_norm(params, squares)
        return got, want, squares.taken - taken

    for autocast in (False, True):
        moe, x = make_moe(T, d, n, E, K, torch.float32, "sonic")
        for layer in (moe, torch.compile(moe, fullgraph=True, backend="aot_eager")):
            got, want, taken = backward(layer, autocast)
            assert taken == 2 and not squares.entries
            assert_rel(got, want, 1e-6, f"norm, autocast {autocast}")
            got, want, taken = backward(layer, autocast, zero=False)   # .grad += the new gradient
            assert taken == 0
            assert_rel(got, want, 1e-6, "norm of gradients summed over two backwards")
            torch._dynamo.reset()
    moe.zero_grad(set_to_none=True)
    moe(x).square().sum().backward()
    moe.w1.grad.mul_(2.0)
    want, taken = torch.nn.utils.get_total_norm([p.grad for p in moe.parameters()]), squares.taken
    assert_rel(grad_norm(list(moe.parameters()), squares), want, 1e-6, "norm after an in-place change")
    assert squares.taken - taken == 1 and not squares.entries   # w2's sums only


@pytest.mark.parametrize("tma", [False, True], ids=["pointers", "tma"])
@pytest.mark.parametrize("split_m,nacc", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_down_bwd_kernel_variants(split_m, nacc, tma):
    # the dA' kernel's program shapes (autotune picks one per shape, so call each directly): rows
    # split in halves or not, one or two accumulators, n not a multiple of nacc * BLOCK_N, an expert
    # with no rows, partial M tiles; W2 and h by pointers or by TMA descriptors; dH, A' and dS against
    # the chain rule in float64
    T, d, n, E, K = 300, 48, 80, 5, 2
    bn = 32 if CUDA else 16
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)  # expert E-1 gets no rows
    pair_tok = torch.arange(T, device=DEV).repeat_interleave(K)
    R = T * K
    gi, off, rev, tok_off, te, tr0, s = sk.routing_metadata(pair_tok, idx.flatten(), torch.rand(R, device=DEV), T, E)
    dO, w2, h = torch.randn(T, d, device=DEV), torch.randn(E, n, d, device=DEV), torch.randn(R, 2 * n, device=DEV)
    dH, Ap = torch.empty(R, 2 * n, device=DEV), torch.empty(R, n, device=DEV)
    dS_part = torch.zeros(sk.triton.cdiv(n, 16), R, device=DEV)
    grid = (sk._max_tiles(R, E) * split_m * sk.triton.cdiv(n, nacc * bn),)
    if tma and CUDA:
        sk._set_allocator()   # device-side descriptors need Triton's scratch allocator; down_bwd sets it, not this launch
    sk._down_bwd_kernel.fn[grid](dO, w2, h, s, gi, te, tr0, off, dH, Ap, dS_part, n, d, E, R,
                                 dO.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), h.stride(0), Ap.stride(0),
                                 BLOCK_M=sk.BLOCK_M, BLOCK_N=bn, BLOCK_K=16, DOT_PREC="ieee", SPLIT_M=split_m, NACC=nacc,
                                 USE_TMA=tma)
    # float64 reference in grouped order: row r belongs to expert e(r) and token gi[r]
    exp_of_row = torch.repeat_interleave(torch.arange(E, device=DEV), (off[1:] - off[:-1]).long())
    dA = torch.einsum("rd,rnd->rn", dO.double()[gi.long()], w2.double()[exp_of_row])
    g, u = h.double().chunk(2, dim=1)
    a = F.silu(g) * u
    sd = s.double()[:, None]
    sig = torch.sigmoid(g)
    dH_ref = torch.cat([sd * dA * u * sig * (1 + g * (1 - sig)), sd * dA * F.silu(g)], dim=1)
    assert_rel(dH, dH_ref, 1e-5, "dH")
    assert_rel(Ap, sd * a, 1e-5, "A'")
    assert_rel(dS_part.sum(0), (dA * a).sum(1), 1e-5, "dS")


@pytest.mark.parametrize("T,E,K,parts", [(300, 5, 2, 1), (70, 7, 3, 2), (700, 16, 4, 3)])
def test_pair_dscore_sums_the_parts_in_pair_order(T, E, K, parts):
    # dA''s row sums come in parts (one per N tile), grouped order; the score gradient wants their sum in
    # pair order. An unused slot's row lies past every tile and is never written: NaN there must give 0
    idx = torch.stack([torch.randperm(E)[:K] for _ in range(T)]).to(DEV)
    idx[torch.rand(T, K, device=DEV) < 0.2] = E
    R = T * K
    r = sk.routing_metadata(None, idx.flatten(), torch.rand(R, device=DEV), T, E)
    dS_part = torch.randn(parts, R, device=DEV)
    used = int(r.offsets[-1])
    dS_part[:, used:] = float("nan")
    got = torch.empty(R, device=DEV)
    sk._pair_dscore_kernel[(sk.triton.cdiv(R, 256),)](dS_part, r.rev, r.offsets, got, R, parts, E, BLOCK=256)
    want = torch.cat([dS_part[:, :used].double().sum(0), torch.zeros(R - used, device=DEV, dtype=torch.float64)])
    assert_rel(got, want[r.rev.long()], 1e-6, "dS in pair order")
    assert torch.all(got[idx.flatten() == E] == 0)


def test_bad_shapes_get_clear_errors():
    x = torch.randn(8, 24, device=DEV)
    w1, w2 = torch.randn(4, 24, 32, device=DEV), torch.randn(4, 16, 24, device=DEV)
    pt, pe, ps = torch.arange(8, device=DEV), torch.zeros(8, dtype=torch.long, device=DEV), torch.ones(8, device=DEV)
    with pytest.raises(ValueError, match="multiples of 16"):
        sk.moe_experts(x, w1, w2, pt, pe, ps)
    with pytest.raises(ValueError, match="do not match"):
        sk.moe_experts(torch.randn(8, 32, device=DEV), w1, w2, pt, pe, ps)
    with pytest.raises(ValueError, match="k=9"):
        sk.router(torch.randn(4, 8, device=DEV), torch.randn(8, 8, device=DEV), torch.zeros(8, device=DEV), 9,
                  "softmax_topk", True, "bf16x2")
    x, w1, w2 = torch.randn(8, 32, device=DEV), torch.randn(4, 32, 32, device=DEV), torch.randn(4, 16, 32, device=DEV)
    with pytest.raises(ValueError, match="expected x"):
        sk.moe_experts(x[None], w1, w2, pt, pe, ps)
    with pytest.raises(ValueError, match="one dtype"):
        sk.moe_experts(x.half(), w1, w2, pt, pe, ps)
    with pytest.raises(ValueError, match="one dtype"):
        sk.moe_experts(x.double(), w1.double(), w2.double(), pt, pe, ps)
    with pytest.raises(ValueError, match="one length"):
        sk.moe_experts(x, w1, w2, pt, pe[:7], ps)
    with pytest.raises(ValueError, match="not a multiple of T=8; pass pair_tok"):
        sk.moe_experts(x, w1, w2, None, pe[:7], ps[:7])
    sk.moe_experts(x, w1, w2, pt, pe, ps)  # the same call with good inputs runs


def saved_bytes(fn, module):
    """Bytes saved for backward while fn() runs, counting each storage once and leaving out the
    parameters' storages (weights are not activations)."""
    seen = {}
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(v for k, v in seen.items() if k not in params), out


def test_memory_contract():
    """At iso-FLOPs (n*K fixed) the sonic layer saves the same bytes as experts get finer, and
    they match the contract's formula; the torch reference grows with K."""
    T, d, E0, n0 = 128, 128, 4, 128
    sonic_bytes, torch_bytes = [], []
    for g in (1, 2, 4):  # (n, E, K) = (n0, E0, 1), (n0/2, 2E0, 2), (n0/4, 4E0, 4)
        n, E, K = n0 // g, E0 * g, g
        for backend, store in (("sonic", sonic_bytes), ("torch", torch_bytes)):
            moe, x = make_moe(T, d, n, E, K, torch.float32, backend)
            moe.train()
            nbytes, out = saved_bytes(lambda: moe(x), moe)
            store.append(nbytes)
            if backend == "sonic":
                # the formula: x, h, metadata; plus the router's idx (int64) and gates (fp32)
                want = sk.saved_bytes_formula(T, d, n, T * K, E, 4) + T * K * (8 + 4)
                assert abs(nbytes - want) / want < 0.03, (nbytes, want)
            out.sum().backward()  # the saved graph is usable
    assert max(sonic_bytes) / min(sonic_bytes) < 1.1, sonic_bytes
    assert torch_bytes[2] > 1.5 * torch_bytes[0], torch_bytes
    assert sonic_bytes[2] < torch_bytes[2] / 2


@pytest.mark.parametrize("portable", [False, True], ids=["default", "portable"])
@pytest.mark.parametrize("extra", [{}, {"token_rounding": True, "rounding_tile": 16}], ids=["topk", "rounding"])
def test_no_output_reads_unwritten_memory(monkeypatch, extra, portable):
    # every torch.empty of a forward and backward filled with NaN (floats) or an index far out of range
    # (ints): an output or gradient that took anything from memory no kernel wrote is not finite. On the
    # GPU this covers the Hopper kernels (default) and the portable ones with TMA: an eager bf16 dW2
    # came out with 256 non-finite values in two of seven runs of the rounding case on the H200
    # (docs/LOG.md, 2026-12-03)
    if portable:
        if not CUDA:
            pytest.skip("the CPU runs the portable kernels in the default case")
        for flag in ("HOPPER_WGRAD", "HOPPER_DOWN_BWD", "HOPPER_GROUPED", "HOPPER_UP"):
            monkeypatch.setattr(sk, flag, False)
    shape = (512, 128, 64, 8, 2, torch.bfloat16) if CUDA else (64, 32, 16, 4, 2, torch.float32)
    real_empty = torch.empty

    def poisoned(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        if t.is_floating_point():
            t.fill_(float("nan"))
        elif t.dtype in (torch.int32, torch.int64):
            t.fill_(2 ** 30)
        return t

    for seed in range(2):
        torch.manual_seed(seed)
        moe, x = make_moe(*shape, "sonic", **extra)
        g = torch.randn(x.shape, device=DEV)
        with monkeypatch.context() as m:
            m.setattr(torch, "empty", poisoned)
            grads = grads_of(moe, x, g)
        for name, t in zip(["out", "dx", "dw1", "dw2", "drouter"], grads):
            assert torch.isfinite(t).all(), f"{name}: {int((~torch.isfinite(t)).sum())} non-finite (seed {seed})"


@pytest.mark.parametrize("extra", [{}, {"token_rounding": True, "rounding_tile": 16}], ids=["topk", "rounding"])
def test_torch_compile_fullgraph(extra):
    # the custom ops under torch.compile give eager's numbers; on the CPU through Triton's interpreter
    shape = (512, 128, 64, 8, 2, torch.bfloat16) if CUDA else (64, 32, 16, 4, 2, torch.float32)
    moe, x = make_moe(*shape, "sonic", **extra)
    g = torch.randn(x.shape, device=DEV)
    eager = grads_of(moe, x, g)
    moe.zero_grad(); x.grad = None
    cmoe = torch.compile(moe, fullgraph=True)
    compiled = grads_of(cmoe, x, g)
    # the same kernels either way: fp32 on the CPU agrees to rounding (the compiler may reorder the glue's
    # sums); bf16 on a GPU to about an ulp
    for name, a, b in zip(["out", "dx", "dw1", "dw2", "drouter"], compiled, eager):
        assert_rel(a, b, 1e-2 if CUDA else 1e-5, name)


# -----------------------------------------------------------------------------
# GPU only

gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@gpu
@pytest.mark.parametrize("extra", [{}, {"token_rounding": True, "rounding_tile": 128}], ids=["topk", "rounding"])
def test_no_host_sync(extra):
    moe, x = make_moe(4096, 256, 128, 32, 4, torch.bfloat16, "sonic", **extra)
    g = torch.randn(x.shape, device=DEV)
    grads_of(moe, x, g)                 # warm-up: compilation and autotuning may sync
    x.grad = None
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = moe(x)
        out.backward(torch.ones_like(out))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16 if CUDA else torch.float16])
def test_tma_loads_match_pointer_loads(monkeypatch, dtype):
    # every expert GEMM with its operands that are not gathered read by TMA descriptors (forced, as on
    # sm_90 with long reductions) against pointer loads: n and d not multiples of any tile, several
    # M tiles an expert, an expert with no rows, rows of the next expert inside a TMA block
    T, d, n, E, K = 300, 72, 40, 5, 2
    x = torch.randn(T, d, device=DEV, dtype=dtype)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / math.sqrt(d)).to(dtype)
    w2 = (torch.randn(E, n, d, device=DEV) / math.sqrt(n)).to(dtype)
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    score = torch.rand(T * K, device=DEV)
    pair_tok = torch.arange(T, device=DEV).repeat_interleave(K)
    dout = torch.randn(T, d, device=DEV, dtype=dtype)
    res = []
    for tma in (False, True):
        monkeypatch.setattr(sk, "TMA", tma)
        out, h, *r = sk.moe_fwd_impl(x, w1, w2, pair_tok, idx.flatten(), score)
        res.append([out, h, *sk.moe_bwd_impl(dout, x, w1, w2, h, *r)])
    assert res[0][3].abs().max() > 0 and res[0][4][E - 1].abs().max() == 0   # dw1: the empty expert's is 0
    for name, a, b in zip(["out", "h", "dx", "dw1", "dw2", "dscore"], *res):
        assert_rel(b, a, 1e-5, f"{name}, TMA against pointers")


@pytest.mark.parametrize("n_prog", [1, 2, 7, 64])
def test_grouped_mm_any_number_of_programs(monkeypatch, n_prog):
    # the persistent grouped GEMM: whatever the grid, each real (M tile, N tile) item is computed once,
    # and the tile map's surplus slots (an expert with no rows makes some) are never taken for tiles;
    # 64 programs is more than there are items. Both operand layouts (y: B (E, KD, N); dX~: B^T)
    T, d, n, E, K = 200, 48, 32, 5, 2
    dtype = torch.float32
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    pair_tok = torch.arange(T, device=DEV).repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), torch.rand(T * K, device=DEV), T, E)
    assert r.tile_expert.numel() > (r.tile_expert < E).sum()          # the bound has surplus slots
    monkeypatch.setattr(sk, "_n_programs", lambda device, work: n_prog)
    a = torch.randn(T * K, n, device=DEV, dtype=dtype)
    w2 = torch.randn(E, n, d, device=DEV, dtype=dtype)
    dH = torch.randn(T * K, 2 * n, device=DEV, dtype=dtype)
    w1 = torch.randn(E, d, 2 * n, device=DEV, dtype=dtype)
    off = r.offsets.tolist()
    want_y = torch.cat([a[off[e]:off[e + 1]] @ w2[e] for e in range(E)])
    want_dx = torch.cat([dH[off[e]:off[e + 1]] @ w1[e].t() for e in range(E)])
    assert_rel(sk.grouped_mm(a, w2, r), want_y, 1e-5, "y")
    assert_rel(sk.grouped_mm(dH, w1, r, trans_b=True), want_dx, 1e-5, "dX~")


def test_tma_refuses_what_it_cannot_read(monkeypatch):
    # forced on, TMA needs 16-byte aligned rows and column offsets; the error says what to do
    monkeypatch.setattr(sk, "TMA", True)
    w = torch.zeros(4, 8, 44, dtype=torch.float16)   # (E, d, 2n) with n = 22: up's half starts at 44 bytes
    with pytest.raises(ValueError, match="sonic_kernels.TMA = None"):
        sk._use_tma(w, col=22)
    assert sk._use_tma(torch.zeros(4, 8, 48, dtype=torch.float16), col=24)
    monkeypatch.setattr(sk, "TMA", None)   # auto: never in the interpreter, whatever the shapes
    assert not sk._use_tma(torch.zeros(4, 8, 48, dtype=torch.float16), col=24)
    # a Triton without device-side descriptors (before 3.4): auto keeps the pointers, forcing says why not
    monkeypatch.delattr(sk.tl, "make_tensor_descriptor")
    monkeypatch.setattr(sk, "INTERPRET", False)
    assert not sk._use_tma(torch.zeros(4, 8, 48, dtype=torch.float16), col=24)
    monkeypatch.setattr(sk, "TMA", True)
    with pytest.raises(ValueError, match="Triton 3.4 or newer"):
        sk._use_tma(torch.zeros(4, 8, 48, dtype=torch.float16), col=24)


HOPPER = CUDA and torch.cuda.get_device_capability()[0] == 9 and sk._gluon_api()


@pytest.mark.skipif(not HOPPER, reason="the warp-specialised weight gradients run on sm_90 GPUs with Triton >= 3.6")
@pytest.mark.parametrize("dn", [(320, 160), (512, 128)], ids=["d320n160", "d512n128"])
@pytest.mark.parametrize("n_prog", [None, 1, 3])
@pytest.mark.parametrize("out_dtype", [torch.float32, None], ids=["fp32_out", "same_out"])
@pytest.mark.parametrize("gather_a", [True, False], ids=["dW1", "dW2"])
@pytest.mark.parametrize("wide", [True, False], ids=["wide", "narrow"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_hopper_wgrad_matches_float64(monkeypatch, gather_a, out_dtype, n_prog, dn, wide, dtype):
    # the Gluon kernel against float64 and against the portable Triton kernel: d and n not multiples of
    # the 128 / 256 tiles nor d of the wide tiles' 192, an expert with no rows, segments that end inside
    # a 64-row step (the TMA block then reads the next expert's rows), and a program walking many tiles
    # (n_prog 1 and 3). With d, n multiples of 128, 16-bit gradients are stored by TMA, in wide tiles too
    # (d = 512: dW1's last tile of rows reaches past M, and goes from registers); dW2's M = n = 128 is
    # half of its 256-row tile
    T, E, K, (d, n) = 700, 6, 2, dn
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    r = sk.routing_metadata(torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten(),
                            torch.rand(T * K, device=DEV), T, E)
    R = T * K
    if gather_a:   # dW1 = X[gather]^T @ dH
        a, b = torch.randn(T, d, device=DEV, dtype=dtype), torch.randn(R, 2 * n, device=DEV, dtype=dtype)
    else:          # dW2 = A'^T @ dO[gather]
        a, b = torch.randn(R, n, device=DEV, dtype=dtype), torch.randn(T, d, device=DEV, dtype=dtype)
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    A, B = (a.double()[gi], b.double()) if gather_a else (a.double(), b.double()[gi])
    want = torch.stack([A[off[e]:off[e + 1]].t() @ B[off[e]:off[e + 1]] for e in range(E)])
    if n_prog is not None:
        monkeypatch.setattr(sk, "_n_programs", lambda device, work: n_prog)
    monkeypatch.setattr(sk, "HOPPER_WGRAD", None)   # where it can run (the default)
    monkeypatch.setattr(sk, "WG_WIDE", None if wide else False)
    assert sk._use_hopper_wgrad(a, b, gather_a, not gather_a)
    got = sk.wgrad(a, b, r, gather_a=gather_a, gather_b=not gather_a, out_dtype=out_dtype)
    cfg, tma_store = sk._wg_config(got)
    assert got.dtype == (out_dtype or dtype)
    assert tma_store == (got.dtype == dtype and d % 128 == 0 and n % 128 == 0)
    assert (cfg["G2"] > 0) == wide
    assert got[E - 1].abs().max() == 0
    assert_rel(got, want, 1e-5 if out_dtype == torch.float32 else 1e-2, "Hopper wgrad against float64")
    # with squares: the same gradient, and its sum of squares (of the fp32 accumulators) from the epilogue
    again, parts = sk.wgrad(a, b, r, gather_a=gather_a, gather_b=not gather_a, out_dtype=out_dtype, squares=True)
    assert torch.equal(again, got)
    assert_rel(parts.double().sum(), want.square().sum(), 1e-5, "sum of squares against float64")
    monkeypatch.setattr(sk, "HOPPER_WGRAD", False)
    assert_rel(got, sk.wgrad(a, b, r, gather_a=gather_a, gather_b=not gather_a, out_dtype=out_dtype), 1e-6,
               "Hopper wgrad against the Triton kernel")


def test_hopper_wgrad_config_choice(monkeypatch):
    # which config _wgrad_hopper_kernel takes (no GPU needed): wide tiles by default, stored by TMA where
    # the gradient allows it (16-bit, contiguous, M a multiple of 128) in 32-row steps, else from
    # registers in 64-row steps; WG_WIDE = False gives the narrow tiles
    fp32, bf16 = torch.zeros(3, 256, 384), torch.zeros(3, 256, 384, dtype=torch.bfloat16)
    odd = torch.zeros(3, 320, 384, dtype=torch.bfloat16)               # M not a multiple of 128: no TMA store
    assert sk._wg_config(fp32) == (sk.WG_WIDE_CONFIG, False)
    assert sk._wg_config(bf16) == (sk.WG_WIDE_TMA_CONFIG, True)
    assert sk._wg_config(odd) == (sk.WG_WIDE_CONFIG, False)
    assert sk._wg_config(bf16.transpose(1, 2).contiguous().transpose(1, 2)) == (sk.WG_WIDE_CONFIG, False)
    # (whether each config fits a program's shared memory, tests/test_sm90.py checks on the compiled kernel)
    monkeypatch.setattr(sk, "WG_WIDE", False)
    assert sk._wg_config(fp32) == (sk.WG_CONFIG, False)
    assert sk._wg_config(bf16) == (sk.WG_TMA_STORE_CONFIG, True)


def test_hopper_wgrad_only_where_it_runs(monkeypatch):
    # auto (None, the default): never in the interpreter or off sm_90, never with both or neither
    # operand gathered; off (False) nowhere; forced where it cannot run, the error says what to do
    a, b = torch.zeros(64, 32, dtype=torch.float16), torch.zeros(64, 48, dtype=torch.float16)
    assert sk.HOPPER_WGRAD is None
    assert not sk._use_hopper_wgrad(a, b, True, False)
    if HOPPER:
        monkeypatch.setattr(sk, "HOPPER_WGRAD", False)
        assert not sk._use_hopper_wgrad(a.cuda(), b.cuda(), True, False)
    monkeypatch.setattr(sk, "HOPPER_WGRAD", True)
    with pytest.raises(ValueError, match=r"sonic_kernels.HOPPER_WGRAD = None \(the default: where it can run\) or False"):
        sk._use_hopper_wgrad(a, b, True, False)      # a CPU tensor
    if HOPPER:
        ac, bc = a.cuda(), b.cuda()
        monkeypatch.setattr(sk, "HOPPER_WGRAD", None)
        assert sk._use_hopper_wgrad(ac, bc, True, False) and not sk._use_hopper_wgrad(ac, bc, True, True)
        assert not sk._use_hopper_wgrad(ac.float(), bc.float(), True, False)   # fp32 operands: the Triton kernel
        monkeypatch.setattr(sk, "_gluon_api", lambda: False)                   # a Triton before 3.6
        assert not sk._use_hopper_wgrad(ac, bc, True, False)


@pytest.mark.skipif(not HOPPER, reason="the warp-specialised dA' kernel runs on sm_90 GPUs with Triton >= 3.6")
@pytest.mark.parametrize("wide", [False, True], ids=["128cols", "256cols"])
@pytest.mark.parametrize("n_prog", [None, 1, 3])
@pytest.mark.parametrize("T,d,n,E,K", [(300, 48, 32, 4, 2), (700, 320, 160, 6, 2), (2049, 512, 256, 32, 8),
                                       (1000, 256, 384, 5, 2)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_hopper_down_bwd_matches_float64(monkeypatch, T, d, n, E, K, n_prog, wide, dtype):
    # the Gluon dA' kernel against float64 and against the portable Triton kernel, with items of 128
    # columns (DB_CONFIG) and of 256 (DB_WIDE_CONFIG, dA' handed over in bf16): d not a multiple of
    # the 64-column step, n not of the 128- or 256-column block (W2's TMA block then reads the next
    # expert's rows), an expert with no rows, segments ending inside a tile, and programs walking many items
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    r = sk.routing_metadata(torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten(),
                            torch.rand(T * K, device=DEV), T, E)
    dout = torch.randn(T, d, device=DEV, dtype=dtype)
    w2 = (torch.randn(E, n, d, device=DEV) / d ** 0.5).to(dtype)
    h = torch.randn(T * K, 2 * n, device=DEV, dtype=dtype)
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    dA = torch.cat([dout.double()[gi[off[e]:off[e + 1]]] @ w2[e].double().t() for e in range(E)])
    g, u, s = h.double()[:, :n], h.double()[:, n:], r.row_score.double()[:, None]
    sig = torch.sigmoid(g)
    silu = g * sig
    want = (torch.cat([s * dA * u * (sig + silu * (1 - sig)), s * dA * silu], 1), s * silu * u,
            (dA * silu * u).sum(1)[r.rev.long()])    # dS in pair order
    if n_prog is not None:
        monkeypatch.setattr(sk, "_n_programs", lambda device, work: n_prog)
    assert sk.HOPPER_DOWN_BWD is None and sk._use_hopper_down_bwd(dout, w2, h)
    monkeypatch.setattr(sk, "DB_WIDE", wide)
    got = sk.down_bwd(dout, w2, h, r)
    for x, y, name in zip(got, want, ("dH", "A'", "dS")):
        # dS from dA' rounded to 16 bits (the wide items' hand-over): that rounding, not fp32's
        assert_rel(x, y, 1e-2 if x.dtype != torch.float32 or wide else 1e-5, f"Hopper {name} against float64")
    monkeypatch.setattr(sk, "HOPPER_DOWN_BWD", False)
    for x, y, name in zip(got, sk.down_bwd(dout, w2, h, r), ("dH", "A'", "dS")):
        assert_rel(x, y, 1e-2 if wide and name != "A'" else 1e-6, f"Hopper {name} against the Triton kernel")


def test_hopper_down_bwd_takes_256_columns_where_n_allows(monkeypatch):
    # DB_WIDE None (the default): 256-column items where n is a multiple of 256; True / False force them or not
    assert sk.DB_WIDE is None
    assert [sk._db_config(n)["BLOCK_N"] for n in (128, 256, 384, 512, 2048)] == [128, 256, 128, 256, 256]
    assert sk.DB_WIDE_CONFIG["ACC16"] and not sk.DB_CONFIG["ACC16"]
    monkeypatch.setattr(sk, "DB_WIDE", False)
    assert sk._db_config(256) is sk.DB_CONFIG
    monkeypatch.setattr(sk, "DB_WIDE", True)
    assert sk._db_config(384) is sk.DB_WIDE_CONFIG


def test_hopper_down_bwd_only_where_it_runs(monkeypatch):
    # auto (None, the default): never in the interpreter, off sm_90 or on fp32; forced where it cannot
    # run, the error says what to do
    dout, w2, h = (torch.zeros(64, 32, dtype=torch.float16), torch.zeros(2, 16, 32, dtype=torch.float16),
                   torch.zeros(128, 32, dtype=torch.float16))
    assert sk.HOPPER_DOWN_BWD is None
    assert not sk._use_hopper_down_bwd(dout, w2, h)
    monkeypatch.setattr(sk, "HOPPER_DOWN_BWD", True)
    with pytest.raises(ValueError, match=r"sonic_kernels.HOPPER_DOWN_BWD = None \(the default: where it can run\) or False"):
        sk._use_hopper_down_bwd(dout, w2, h)      # CPU tensors
    if HOPPER:
        args = (dout.cuda(), w2.cuda(), h.cuda())
        monkeypatch.setattr(sk, "HOPPER_DOWN_BWD", None)
        assert sk._use_hopper_down_bwd(*args)
        assert not sk._use_hopper_down_bwd(*(t.float() for t in args))          # fp32: the Triton kernel
        odd = torch.zeros(128, 2 * 12, dtype=torch.float16, device="cuda")      # n = 12: h's rows not 16-byte copies
        assert not sk._use_hopper_down_bwd(args[0], torch.zeros(2, 12, 32, dtype=torch.float16, device="cuda"), odd)
        odd = torch.zeros(128, 2 * 24, dtype=torch.float16, device="cuda")      # n = 24: each half's rows not either
        assert not sk._use_hopper_down_bwd(args[0], torch.zeros(2, 24, 32, dtype=torch.float16, device="cuda"), odd)
        monkeypatch.setattr(sk, "HOPPER_DOWN_BWD", False)
        assert not sk._use_hopper_down_bwd(*args)


@pytest.mark.skipif(not HOPPER, reason="the warp-specialised up-projection runs on sm_90 GPUs with Triton >= 3.6")
@pytest.mark.parametrize("n_prog", [None, 1, 3])
@pytest.mark.parametrize("T,d,n,E,K", [(300, 48, 32, 4, 2), (700, 320, 160, 6, 2), (2049, 512, 256, 32, 8)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_hopper_up_matches_float64(monkeypatch, T, d, n, E, K, n_prog, dtype):
    # the Gluon up-projection against float64 and against the portable Triton kernel: d not a multiple
    # of the 64-column step (W1's TMA block then reads the next expert's rows, which meet zeros), n not
    # of the 128-column block, an expert with no rows, segments ending inside a tile, programs walking
    # many items
    idx = torch.stack([torch.randperm(E - 1)[:K] for _ in range(T)]).to(DEV)   # expert E-1 gets no rows
    r = sk.routing_metadata(torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten(),
                            torch.rand(T * K, device=DEV), T, E)
    x = torch.randn(T, d, device=DEV, dtype=dtype)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / d ** 0.5).to(dtype)
    gi, off = r.gather_idx.long(), r.offsets.tolist()
    want_h = torch.cat([x.double()[gi[off[e]:off[e + 1]]] @ w1[e].double() for e in range(E)])
    g, u = want_h[:, :n], want_h[:, n:]
    if n_prog is not None:
        monkeypatch.setattr(sk, "_n_programs", lambda device, work: n_prog)
    assert sk.HOPPER_UP is None and sk._use_hopper_up(x, w1)
    h, a = sk.up_swiglu(x, w1, r)
    assert_rel(h, want_h, 1e-2, "Hopper h against float64")
    assert_rel(a, g * torch.sigmoid(g) * u, 1e-2, "Hopper a against float64")
    hg, hu = h.double()[:, :n], h.double()[:, n:]            # a is SwiGLU of h as stored
    assert_rel(a, hg * torch.sigmoid(hg) * hu, 1e-2, "Hopper a against float64 on its h")
    monkeypatch.setattr(sk, "HOPPER_UP", False)
    h_t, a_t = sk.up_swiglu(x, w1, r)
    assert torch.equal(h, h_t), "Hopper h against the Triton kernel: the same MMAs in the same order"
    assert_rel(a, a_t, 1e-2, "Hopper a against the Triton kernel")


def test_hopper_up_only_where_it_runs(monkeypatch):
    # auto (None, the default): never in the interpreter, off sm_90, on fp32 or where x's rows are not
    # 16-byte copies; off (False) nowhere; forced where it cannot run, the error says what to do
    x, w1 = torch.zeros(64, 32, dtype=torch.float16), torch.zeros(2, 32, 32, dtype=torch.float16)
    assert sk.HOPPER_UP is None
    assert not sk._use_hopper_up(x, w1)
    monkeypatch.setattr(sk, "HOPPER_UP", True)
    with pytest.raises(ValueError, match=r"sonic_kernels.HOPPER_UP = None \(the default: where it can run\) or False"):
        sk._use_hopper_up(x, w1)      # CPU tensors
    if HOPPER:
        xc, wc = x.cuda(), w1.cuda()
        monkeypatch.setattr(sk, "HOPPER_UP", None)
        assert sk._use_hopper_up(xc, wc) and not sk._use_hopper_up(xc.float(), wc.float())
        assert not sk._use_hopper_up(torch.zeros(64, 12, dtype=torch.float16, device="cuda"),
                                     torch.zeros(2, 12, 32, dtype=torch.float16, device="cuda"))   # d = 12
        assert not sk._use_hopper_up(torch.zeros(64, 24, dtype=torch.float16, device="cuda"),
                                     torch.zeros(2, 24, 32, dtype=torch.float16, device="cuda"))   # d = 24: 2-byte copies
        monkeypatch.setattr(sk, "_gluon_api", lambda: False)                   # a Triton before 3.6
        assert not sk._use_hopper_up(xc, wc)
        monkeypatch.setattr(sk, "_gluon_api", lambda: True)
        monkeypatch.setattr(sk, "HOPPER_UP", False)
        assert not sk._use_hopper_up(xc, wc)


@pytest.mark.skipif(not HOPPER, reason="the warp-specialised grouped GEMM runs on sm_90 GPUs with Triton >= 3.6")
@pytest.mark.parametrize("n_prog", [None, 1, 3])
@pytest.mark.parametrize("trans_b", [False, True], ids=["y", "dX"])
@pytest.mark.parametrize("R,KD,N,E", [(600, 48, 40, 4), (1400, 320, 264, 6), (4100, 512, 768, 32)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_hopper_grouped_mm_matches_float64(monkeypatch, R, KD, N, E, trans_b, n_prog, dtype):
    # the Gluon grouped GEMM against float64 and against the portable Triton kernel: KD not a multiple
    # of the 64-column step, N not of the 256-column block (B's TMA block then reads the next expert's
    # rows), an expert with no rows, segments ending inside a tile (stored masked), programs walking
    # many items
    exp = torch.randint(0, E - 1, (R,), device=DEV)                   # expert E-1 gets no rows
    r = sk.routing_metadata(torch.arange(R, device=DEV), exp, torch.rand(R, device=DEV), R, E)
    a = torch.randn(R, KD, device=DEV, dtype=dtype)
    b = (torch.randn(E, N, KD, device=DEV) if trans_b else torch.randn(E, KD, N, device=DEV)).to(dtype)
    off = r.offsets.tolist()
    want = torch.cat([a.double()[off[e]:off[e + 1]] @ (b[e].double().t() if trans_b else b[e].double())
                      for e in range(E)])
    if n_prog is not None:
        monkeypatch.setattr(sk, "_n_programs", lambda device, work: n_prog)
    c_probe = torch.empty(R, N, device=DEV, dtype=dtype)
    assert sk.HOPPER_GROUPED is None and sk._use_hopper_grouped(a, b, c_probe, trans_b)
    got = sk.grouped_mm(a, b, r, trans_b=trans_b)
    assert_rel(got, want, 1e-2, "Hopper grouped GEMM against float64")
    monkeypatch.setattr(sk, "HOPPER_GROUPED", False)
    assert_rel(got, sk.grouped_mm(a, b, r, trans_b=trans_b), 1e-2, "Hopper grouped GEMM against the Triton kernel")


def test_hopper_grouped_mm_only_where_it_runs(monkeypatch):
    # auto (None, the default): never in the interpreter, off sm_90 or on fp32; forced where it cannot
    # run, the error says what to do
    a, b, c = (torch.zeros(64, 32, dtype=torch.bfloat16), torch.zeros(2, 32, 48, dtype=torch.bfloat16),
               torch.zeros(64, 48, dtype=torch.bfloat16))
    assert sk.HOPPER_GROUPED is None
    assert not sk._use_hopper_grouped(a, b, c, False)
    monkeypatch.setattr(sk, "HOPPER_GROUPED", True)
    with pytest.raises(ValueError, match=r"sonic_kernels.HOPPER_GROUPED = None \(the default: where it can run\) or False"):
        sk._use_hopper_grouped(a, b, c, False)      # CPU tensors
    if HOPPER:
        args = (a.cuda(), b.cuda(), c.cuda())
        monkeypatch.setattr(sk, "HOPPER_GROUPED", None)
        assert sk._use_hopper_grouped(*args, False)
        assert not sk._use_hopper_grouped(*(t.float() for t in args), False)   # fp32: the Triton kernel
        assert not sk._use_hopper_grouped(args[0][:, :30], args[1], args[2], False)   # a's rows not 16-byte
        monkeypatch.setattr(sk, "HOPPER_GROUPED", False)
        assert not sk._use_hopper_grouped(*args, False)


@gpu
def test_int64_offsets():
    # T*K*d > 2^31: every row offset of the (T*K, d) buffers must be computed in int64
    T, d, n, E, K = 65536 + 512, 4096, 64, 16, 8
    assert T * K * d > 2**31
    x = torch.randn(T, d, device=DEV, dtype=torch.bfloat16, requires_grad=True)
    w1 = (torch.randn(E, d, 2 * n, device=DEV) / math.sqrt(d)).bfloat16().requires_grad_()
    w2 = (torch.randn(E, n, d, device=DEV) / math.sqrt(n)).bfloat16().requires_grad_()
    logits = torch.randn(T, E, device=DEV)
    top, idx = torch.topk(logits, K)
    score = torch.softmax(top, -1).flatten().requires_grad_()
    pair_tok, pair_exp = torch.arange(T, device=DEV).repeat_interleave(K), idx.flatten()
    g = torch.randn(T, d, device=DEV, dtype=torch.bfloat16)
    out = sk.moe_experts(x, w1, w2, pair_tok, pair_exp, score)
    got = [out] + list(torch.autograd.grad(out, (x, w1, w2, score), g))
    del out
    # the reference in fp32, one expert's pairs at a time (the others marked unused, expert E): all
    # experts in one autograd graph hold several (T*K, d) buffers of 4.3 GB, tens of GB that starved the
    # tests running beside it on one GPU (docs/LOG.md, 2026-12-08)
    ref_in = [t.detach().float().requires_grad_() for t in (x, w1, w2, score)]
    want = [torch.zeros_like(ref_in[0])] + [torch.zeros_like(t) for t in ref_in]
    g32 = g.float()
    for e in range(E):
        out = experts_torch(ref_in[0], ref_in[1], ref_in[2], pair_tok, torch.where(pair_exp == e, e, E), ref_in[3])
        for acc, part in zip(want, [out.detach()] + list(torch.autograd.grad(out, ref_in, g32))):
            acc += part
        del out
    for name, a, b in zip(["out", "dx", "dw1", "dw2", "dscore"], got, want):
        assert_rel(a, b, 1e-2, name)
    # the last rows are right too, not only the bulk
    assert_rel(got[0][-100:], want[0][-100:], 1e-2, "out, last rows")
    assert_rel(got[1][-100:], want[1][-100:], 1e-2, "dx, last rows")


@pytest.mark.parametrize("router_type,extra", [
    ("softmax_topk", {}),
    ("softmax_topk", {"aux_loss_coef": 0.01, "z_loss_coef": 1e-3}),  # the fused router's own probs path
    ("topk_softmax", {"norm_topk_prob": False}),
    ("sigmoid", {}),
    ("softmax_topk", {"token_rounding": True, "rounding_tile": 16, "aux_loss_coef": 0.01}),
    ("sigmoid", {"token_rounding": True, "rounding_tile": 16, "rounding_mode": "up"}),
    ("topk_softmax", {"token_rounding": True, "rounding_tile": 16, "rounding_mode": "down"}),
    ("topk_softmax", {"n_shared_experts": 1, "z_loss_coef": 1e-3, "aux_loss_coef": 0.01}),
])
def test_every_router_runs_on_sonic(router_type, extra):
    """Each routing choice gives the same layer on sonic as on the torch reference, in train mode."""
    T, d, n, E, K = 70, 32, 16, 6, 2
    kw = dict(router_type=router_type, **extra)
    aux = kw.pop("aux_loss_coef", 0.0)
    sonic, x = make_moe(T, d, n, E, K, torch.float32, "sonic", **kw)
    ref, x_ref = make_moe(T, d, n, E, K, torch.float32, "torch", **kw)
    for m in (sonic, ref):
        m.config.aux_loss_coef = aux
    if router_type == "sigmoid":
        sonic.expert_bias.normal_(0, 0.5)  # the bias steers the selection
    ref.load_state_dict(sonic.state_dict())
    x_ref.data.copy_(x.data)
    sonic.train(), ref.train()
    out, out_ref = sonic(x), ref(x_ref)
    assert torch.equal(sonic.tokens_per_expert, ref.tokens_per_expert)
    g = torch.randn(out.shape, device=DEV)
    loss, loss_ref = (out * g).sum() + sonic.aux_loss, (out_ref * g).sum() + ref.aux_loss
    loss.backward(), loss_ref.backward()
    if extra.get("token_rounding"):
        assert sonic.rounding_dropped + sonic.rounding_padded > 0  # rounding did move some pairs
    # the output, x's gradient and every parameter's (router, w1, w2, shared experts)
    grads = dict(sonic.named_parameters())
    assert set(grads) == {"router.weight", "w1", "w2"} | ({"shared.c_fc.weight", "shared.c_proj.weight"}
                                                          if sonic.shared is not None else set())
    pairs = [("out", out, out_ref), ("x", x.grad, x_ref.grad)]
    pairs += [(name, p.grad, dict(ref.named_parameters())[name].grad) for name, p in grads.items()]
    for name, a, b in pairs:
        assert_rel(a, b, 1e-5, name)


@pytest.mark.parametrize("backend", ["torch", "sonic"])
def test_an_empty_batch(backend):
    """No tokens: an empty output and gradient, zero losses and loads, in train and eval mode (the
    kernels' grids and the losses' means need a token, so nothing is routed); and the experts given no
    pair return zeros."""
    for train in (True, False):
        moe, _ = make_moe(8, 32, 16, 4, 2, torch.float32, backend, z_loss_coef=1e-3)
        moe.config.aux_loss_coef = 0.01
        x = torch.randn(2, 0, 32, device=DEV, requires_grad=True)
        out = moe.train(train)(x)
        assert out.shape == x.shape
        (out.sum() + (moe.aux_loss if train else 0)).backward()
        assert x.grad.shape == x.shape and moe.tokens_per_expert.sum() == 0
        assert not train or moe.aux_loss.item() == 0
    x, w1, w2 = torch.randn(5, 32, device=DEV), moe.w1.detach(), moe.w2.detach()
    none = torch.zeros(0, dtype=torch.long, device=DEV)
    assert torch.equal(sk.moe_experts(x, w1, w2, none, none, none.float()), torch.zeros_like(x))


def test_deterministic():
    """No atomics, no scatter-add: two runs give bit-identical outputs and gradients."""
    dtype = torch.bfloat16 if CUDA else torch.float32
    runs, seed = [], int(torch.randint(2**62, ()))
    for _ in range(2):
        torch.manual_seed(seed)  # the same weights, inputs and output gradient, on CPU and GPU
        moe, x = make_moe(300, 64, 32, 8, 3, dtype, "sonic")
        runs.append(grads_of(moe, x, torch.randn(x.shape, device=DEV)))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_deterministic_algorithms_take_the_first_config():
    """sonic_kernels._timed, the autotuners' timing: under torch.use_deterministic_algorithms every config
    that launches ties, so the first of the list runs in every process (one that cannot launch raises
    in it, and the autotuner passes it over); the kernel still computes its result."""
    import triton
    import triton.language as tl

    @triton.autotune(configs=[triton.Config({"B": 32}), triton.Config({"B": 16})], key=["n"], do_bench=sk._timed)
    @triton.jit
    def twice(X, Y, n, B: tl.constexpr):
        i = tl.program_id(0) * B + tl.arange(0, B)
        tl.store(Y + i, 2 * tl.load(X + i, mask=i < n), mask=i < n)

    x = torch.randn(100, device=DEV)
    y = torch.empty_like(x)
    calls = []
    torch.use_deterministic_algorithms(True)
    try:
        tie = sk._timed(lambda: calls.append(1), (0.5, 0.2, 0.8))  # a launch, and no timing: every config ties
        twice[lambda meta: (triton.cdiv(100, meta["B"]),)](x, y, 100)
    finally:
        torch.use_deterministic_algorithms(False)
    assert tie == [0.0, 0.0, 0.0] and calls == [1]
    assert twice.best_config.kwargs == {"B": 32} and torch.equal(y, 2 * x)


@pytest.mark.skipif(not CUDA, reason="the interpreter has one config a kernel: there is nothing to choose")
def test_deterministic_algorithms_fix_the_autotuners_choice(monkeypatch):
    """Under torch.use_deterministic_algorithms (train.py's --deterministic) the portable kernels take
    the first config that launches, not the fastest by a timing that varies between processes."""
    for flag in ("HOPPER_UP", "HOPPER_GROUPED", "HOPPER_DOWN_BWD", "HOPPER_WGRAD"):
        monkeypatch.setattr(sk, flag, False)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    kernels = [sk._up_swiglu_kernel, sk._grouped_mm_kernel, sk._down_bwd_kernel, sk._wgrad_kernel]
    saved = [dict(k.cache) for k in kernels]
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            for k in kernels:
                k.cache.clear()
            torch.manual_seed(0)
            moe, x = make_moe(300, 64, 32, 8, 3, torch.bfloat16, "sonic")
            runs.append((grads_of(moe, x, torch.randn(x.shape, device=DEV)), [str(k.best_config) for k in kernels]))
    finally:
        torch.use_deterministic_algorithms(False)
        for k, c in zip(kernels, saved):
            k.cache.clear()
            k.cache.update(c)
    (ga, picks), (gb, picks_b) = runs
    assert picks == picks_b
    if torch.cuda.get_device_capability()[0] == 9:  # 228 KB of shared memory: every first config fits
        assert picks == [str(k.configs[0]) for k in kernels]
    for a, b in zip(ga, gb):
        assert torch.equal(a, b)


@pytest.mark.parametrize("router_type,extra", [
    ("softmax_topk", {}),
    ("topk_softmax", {}),
    ("sigmoid", {}),
    ("softmax_topk", {"token_rounding": True, "rounding_tile": 16}),
])
def test_gpt_trains_on_sonic(router_type, extra):
    """A tiny GPT on the sonic kernels learns a repeating sequence with each routing choice."""
    from model import GPT
    cfg = GPTConfig(block_size=16, vocab_size=32, n_layer=1, n_head=2, n_embd=32, n_expert=4, top_k=2,
                    expert_size=16, moe_backend="sonic", router_type=router_type, **extra)
    model = GPT(cfg).to(DEV)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    seq = torch.arange(64, device=DEV) % 7
    idx = seq[:-1].unfold(0, 16, 4)[:8].contiguous()  # (8, 16)
    tgt = seq[1:].unfold(0, 16, 4)[:8].contiguous()
    losses = []
    for _ in range(25):
        _, loss = model(idx, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_expert_bias()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
