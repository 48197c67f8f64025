"""
The sonic backend's fused router (sonic_kernels.router) against a float64 PyTorch statement of each
router type, with the balancing loss and the z-loss; the logits' precision under each router_dtype;
and the whole MoE module's saved tensors (router included), which hold no (T, E) or extra (T, d) tensor.
On CPU the kernels run in Triton's interpreter (fp32).
"""

import pytest
import torch
import torch.nn.functional as F

import sonic_kernels as sk
from model import GPTConfig
from moe import MoE

DEV = "cuda" if torch.cuda.is_available() else "cpu"
ROUTERS = [("softmax_topk", True), ("topk_softmax", True), ("topk_softmax", False), ("sigmoid", True)]
SHAPES = [(37, 8, 2, 16), (50, 12, 3, 32), (9, 5, 5, 16), (20, 16, 1, 16), (1, 6, 2, 16)]  # (T, E, K, d)


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def reference(x, w, bias, K, router_type, norm, aux_coef, z_coef):
    """Float64: the selection, the gates and the two loss terms, written out plainly."""
    logits = x.double() @ w.double().t()
    if router_type == "softmax_topk":
        top, idx = torch.topk(logits, K, dim=-1)
        gates, P = F.softmax(top, dim=-1), F.softmax(logits, dim=-1)
    elif router_type == "topk_softmax":
        P = F.softmax(logits, dim=-1)
        gates, idx = torch.topk(P, K, dim=-1)
        if norm:
            gates = gates / gates.sum(-1, keepdim=True)
    else:
        s = torch.sigmoid(logits)
        idx = torch.topk(s + bias.double(), K, dim=-1).indices
        gates = s.gather(1, idx)
        gates, P = gates / gates.sum(-1, keepdim=True), s / s.sum(-1, keepdim=True)
    T, E = logits.shape
    f = torch.zeros(E, dtype=torch.float64).index_add_(0, idx.flatten(), torch.ones(idx.numel(), dtype=torch.float64))
    f = f / idx.numel()
    loss = aux_coef * E * (f * P.mean(0)).sum() + z_coef * torch.logsumexp(logits, -1).square().mean()
    return idx, gates, loss, f


@pytest.mark.parametrize("T,E,K,d", SHAPES)
@pytest.mark.parametrize("router_type,norm", ROUTERS, ids=["softmax_topk", "topk_softmax_norm", "topk_softmax_nonorm",
                                                          "sigmoid"])
def test_router_against_float64(router_type, norm, T, E, K, d):
    x = torch.randn(T, d, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(E, d, dtype=torch.float64)).requires_grad_()
    bias = 0.1 * torch.randn(E)
    aux_coef, z_coef = 0.05, 0.01
    idx_ref, gates_ref, loss_ref, f = reference(x, w, bias, K, router_type, norm, aux_coef, z_coef)
    dgates = torch.randn(T, K, dtype=torch.float64)
    dx_ref, dw_ref = torch.autograd.grad((gates_ref * dgates).sum() + 3.0 * loss_ref, (x, w))

    xf, wf = x.detach().float().to(DEV).requires_grad_(), w.detach().float().to(DEV).requires_grad_()
    idx, gates, loss, counts = sk.router(xf, wf, bias.to(DEV), K, router_type, norm, "bf16x2", aux_coef, z_coef)
    assert torch.equal(idx.cpu(), idx_ref)
    assert torch.equal(counts.cpu(), torch.bincount(idx_ref.flatten(), minlength=E))
    assert rel(gates.cpu(), gates_ref) < 1e-6
    assert loss.shape == () and abs(loss.item() - loss_ref.item()) <= 1e-6 * abs(loss_ref.item())
    dx, dw = [g.cpu() for g in torch.autograd.grad((gates * dgates.float().to(DEV)).sum() + 3.0 * loss, (xf, wf))]
    assert rel(dx, dx_ref) < 1e-5 and rel(dw, dw_ref) < 1e-5, (rel(dx, dx_ref), rel(dw, dw_ref))


@pytest.mark.parametrize("T,E,K,d", SHAPES[:3])
@pytest.mark.parametrize("router_type,norm", ROUTERS, ids=["softmax_topk", "topk_softmax_norm", "topk_softmax_nonorm",
                                                          "sigmoid"])
def test_router_scores_against_float64(router_type, norm, T, E, K, d):
    """Token rounding's scores (E, T) from the router's pass: route_topk's probs (the softmax over all E, or
    the sigmoids) in float64, and their gradient joined to the gates' and the losses' in dx and dW; beside them
    top-K's choice as an (E, T) mask. The other outputs equal those of the call without scores."""
    x = torch.randn(T, d, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(E, d, dtype=torch.float64)).requires_grad_()
    bias = 0.1 * torch.randn(E)
    _, gates_ref, loss_ref, _ = reference(x, w, bias, K, router_type, norm, 0.05, 0.01)
    logits = x @ w.t()
    scores_ref = (torch.sigmoid(logits) if router_type == "sigmoid" else F.softmax(logits, -1)).t()
    dgates, dscores = torch.randn(T, K, dtype=torch.float64), torch.randn(E, T, dtype=torch.float64)
    ref = torch.autograd.grad((gates_ref * dgates).sum() + 3.0 * loss_ref + (scores_ref * dscores).sum(), (x, w),
                              retain_graph=True)

    xf, wf = x.detach().float().to(DEV).requires_grad_(), w.detach().float().to(DEV).requires_grad_()
    args = (xf, wf, bias.to(DEV), K, router_type, norm, "bf16x2", 0.05, 0.01)
    *outs, scores, chosen = sk.router(*args, scores=True)
    for a, b in zip(outs, sk.router(*args)):
        assert torch.equal(a, b)
    assert scores.shape == (E, T) and scores.is_contiguous()
    assert torch.equal(chosen, torch.zeros(E, T, dtype=torch.bool, device=DEV).scatter_(0, outs[0].t(), True))
    assert rel(scores.cpu(), scores_ref) < 1e-6, rel(scores.cpu(), scores_ref)
    loss = (outs[1] * dgates.float().to(DEV)).sum() + 3.0 * outs[2] + (scores * dscores.float().to(DEV)).sum()
    got = [g.cpu() for g in torch.autograd.grad(loss, (xf, wf), retain_graph=True)]
    assert all(rel(g, r) < 1e-5 for g, r in zip(got, ref)), [rel(g, r) for g, r in zip(got, ref)]
    # the scores' term alone, so that an error in it cannot hide behind the others
    ref = torch.autograd.grad((scores_ref * dscores).sum(), (x, w))
    got = [g.cpu() for g in torch.autograd.grad((scores * dscores.float().to(DEV)).sum(), (xf, wf))]
    assert all(rel(g, r) < 1e-5 for g, r in zip(got, ref)), [rel(g, r) for g, r in zip(got, ref)]


@pytest.mark.parametrize("router_type,norm", ROUTERS, ids=["softmax_topk", "topk_softmax_norm", "topk_softmax_nonorm",
                                                          "sigmoid"])
def test_router_programs_walk_several_row_blocks(monkeypatch, router_type, norm):
    # a program of the router's forward kernel takes n_iter row blocks and adds up their column sums:
    # with two programs at T = 37, E = 128 and 4-row blocks, the second walks blocks 5 to 9, the last
    # reaching past T
    monkeypatch.setattr(sk, "ROUTER_FWD_PROGRAMS", 2)
    assert sk._router_block_t(128, sk._router_fwd_tile(128)[0]) == 4
    test_router_against_float64(router_type, norm, 37, 128, 3, 16)


@pytest.mark.parametrize("router_type,norm", ROUTERS, ids=["softmax_topk", "topk_softmax_norm", "topk_softmax_nonorm",
                                                          "sigmoid"])
def test_router_ties_go_to_the_lower_expert(router_type, norm):
    # one-hot rows of x pick columns of a weight of small integers: logits with many exact ties, which
    # every router breaks toward the lower expert index
    T, E, K, d = 40, 12, 4, 16
    x = torch.eye(d)[torch.randint(0, d, (T,))].to(DEV)
    w = torch.randint(0, 3, (E, d)).float().to(DEV)
    idx, gates, _, counts = sk.router(x, w, torch.zeros(E, device=DEV), K, router_type, norm, "bf16x2")
    logits = (x @ w.t()).cpu()
    for t in range(T):
        row = logits[t].tolist()
        assert idx[t].tolist() == sorted(range(E), key=lambda e: (-row[e], e))[:K], (t, row)
    assert torch.equal(counts.cpu(), torch.bincount(idx.cpu().flatten(), minlength=E))
    chosen = logits.gather(1, idx.cpu())
    if router_type == "softmax_topk":
        want = torch.softmax(chosen, -1)
    elif router_type == "topk_softmax":
        want = torch.softmax(logits, -1).gather(1, idx.cpu())
        want = want / want.sum(-1, keepdim=True) if norm else want
    else:
        want = torch.sigmoid(chosen) / torch.sigmoid(chosen).sum(-1, keepdim=True)
    assert rel(gates.cpu(), want) < 1e-6


def test_router_gradient_of_each_term_alone():
    """The gates' term, the balancing term and the z-loss term each reach x and the weight: one
    term at a time, so an error in one cannot hide behind the others."""
    T, E, K, d = 24, 8, 2, 16
    x = torch.randn(T, d, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(E, d, dtype=torch.float64)).requires_grad_()
    for aux_coef, z_coef, dg_scale in ((0.0, 0.0, 1.0), (0.1, 0.0, 0.0), (0.0, 0.1, 0.0)):
        _, gates_ref, loss_ref, f = reference(x, w, torch.zeros(E), K, "softmax_topk", True, aux_coef, z_coef)
        dgates = dg_scale * torch.randn(T, K, dtype=torch.float64)
        ref = torch.autograd.grad((gates_ref * dgates).sum() + loss_ref, (x, w))
        xf, wf = x.detach().float().to(DEV).requires_grad_(), w.detach().float().to(DEV).requires_grad_()
        _, gates, loss, _ = sk.router(xf, wf, torch.zeros(E, device=DEV), K, "softmax_topk", True, "fp32",
                                      aux_coef, z_coef)
        got = [g.cpu() for g in torch.autograd.grad((gates * dgates.float().to(DEV)).sum() + loss, (xf, wf))]
        assert all(rel(g, r) < 1e-5 for g, r in zip(got, ref)), (aux_coef, z_coef, [rel(g, r) for g, r in zip(got, ref)])


@pytest.mark.parametrize("router_dtype,bound", [("fp32", 1e-6), ("bf16x2", 1e-4), ("bf16", 1e-2)])
def test_router_logits_precision(router_dtype, bound):
    """bf16 activations against the fp32 router weight: 'bf16x2' (hi + lo halves of the weight) is
    close to the fp32 product, 'bf16' (the weight rounded) is not. On the CPU the products run in fp32
    on the same bf16 operands a GPU's tensor cores read, so the error measured is the operands'."""
    x = torch.randn(512, 256).to(torch.bfloat16)
    w = 0.02 * torch.randn(64, 256)
    want = x.double() @ w.double().t()
    err = rel(sk.router_logits(x, w, router_dtype), want)
    assert err < bound, err
    if router_dtype == "bf16":
        assert err > 1e-4  # the rounding of the weight is visible: the test can tell the modes apart


def test_fp32_router_products_ignore_tf32(monkeypatch):
    """router_dtype 'fp32' gives fp32 products even where TF32 is allowed for fp32 matmuls (train.py and
    bench.py allow it): every matmul of its forward and backward runs with the flag off, and it is restored."""
    flags, matmul = [], torch.Tensor.__matmul__

    def spy(a, b):
        flags.append(torch.backends.cuda.matmul.allow_tf32)
        return matmul(a, b)
    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    T, E, K, d = 40, 8, 2, 16
    x = torch.randn(T, d, device=DEV, requires_grad=True)
    w = (0.5 * torch.randn(E, d, device=DEV)).requires_grad_()
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        _, gates, loss, _ = sk.router(x, w, torch.zeros(E, device=DEV), K, "softmax_topk", True, "fp32", 0.05, 0.0)
        ((gates * torch.randn(T, K, device=DEV)).sum() + loss).backward()
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    # the forward's product, the backward's recomputed one, and dx and dw
    assert len(flags) == 4 and not any(flags), flags
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()


@pytest.mark.parametrize("rounding", [False, True], ids=["topk", "rounding"])
@pytest.mark.parametrize("router_type", ["softmax_topk", "sigmoid"])
def test_whole_module_saves_no_T_by_E_or_extra_T_by_d(router_type, rounding):
    """The whole MoE module's saved tensors, router and balancing loss included: x once, h, and O(T*K)
    routing state (with token rounding, O(T*K + E*tile) pair-list state). Nothing of shape (T, E), no
    second (T, d), no fp32 copy of the 16-bit x."""
    T, d, n, E, K, tile = 96, 32, 16, 12, 2, 8
    dt = torch.bfloat16 if DEV == "cuda" else torch.float16    # the interpreter has no bf16 arithmetic
    cfg = GPTConfig(n_embd=d, n_head=2, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic", router_type=router_type,
                    aux_loss_coef=0.01, z_loss_coef=0.001, token_rounding=rounding, rounding_tile=tile)
    moe = MoE(cfg).to(DEV, dt).train()
    x = torch.randn(T, d, device=DEV, dtype=dt, requires_grad=True)
    params = {p.data_ptr() for p in moe.parameters()}
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = moe(x)
    acts = {t.untyped_storage().data_ptr(): t for t in saved if t.data_ptr() not in params}
    shapes = [tuple(t.shape) for t in acts.values()]
    assert (T, E) not in shapes and (E, T) not in shapes, shapes
    assert sum(1 for s in shapes if s == (T, d)) == 1, shapes          # x, once
    assert all(t.dtype == dt for t in acts.values() if t.dim() == 2 and t.shape[1] in (d, 2 * n)), shapes
    nbytes = sum(t.untyped_storage().nbytes() for t in acts.values())
    # the experts' contract on R rows, then the router's idx (int64), gates, lse and its row sums (fp32), and
    # its counts (E,) int64, which the balancing loss's gradient reads. Rounding's R slots: the T*K chosen pairs
    # and up to k_add added an expert; its pair list keeps a flag, a position and a score a slot (1 + 8 + 4
    # bytes), and the added tokens' indices (E, k_add) and the experts' (E, 1), int64
    k_add = tile // 2 if rounding else 0
    R = T * K + E * k_add
    want = (sk.saved_bytes_formula(T, d, n, R, E, x.element_size()) + T * K * (8 + 4) + T * (4 + 4) + E * 8
            + (R * 13 + E * (k_add + 1) * 8 if rounding else 0))
    assert nbytes <= want, (nbytes, want, shapes)
    (out.float().sum() + moe.aux_loss).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in moe.parameters())


@pytest.mark.parametrize("router_type,norm", [("softmax_topk", True), ("sigmoid", True)])
def test_router_half_precision_activations(router_type, norm):
    """Half-precision x (fp16 here: the interpreter has no bf16 arithmetic; the GPU tests run bf16), fp32
    weight: the logits as hi + lo halves, dlogits split the same way for dW, one GEMM for dx. Against
    float64 on the same rounded x: dW as accurate as fp32, dx within the half type's rounding."""
    T, E, K, d = 64, 16, 4, 32
    x16 = torch.randn(T, d).half()
    x = x16.double().requires_grad_()
    w = (0.3 * torch.randn(E, d, dtype=torch.float64)).requires_grad_()
    bias = 0.1 * torch.randn(E)
    idx_ref, gates_ref, loss_ref, f = reference(x, w, bias, K, router_type, norm, 0.05, 0.01)
    dgates = torch.randn(T, K, dtype=torch.float64)
    dx_ref, dw_ref = torch.autograd.grad((gates_ref * dgates).sum() + loss_ref, (x, w))
    xh, wf = x16.to(DEV).requires_grad_(), w.detach().float().to(DEV).requires_grad_()
    idx, gates, loss, _ = sk.router(xh, wf, bias.to(DEV), K, router_type, norm, "bf16x2", 0.05, 0.01)
    assert torch.equal(idx.cpu(), idx_ref)
    dx, dw = torch.autograd.grad((gates * dgates.float().to(DEV)).sum() + loss, (xh, wf))
    assert dx.dtype == torch.float16 and dw.dtype == torch.float32
    assert rel(dx.cpu(), dx_ref) < 3e-3 and rel(dw.cpu(), dw_ref) < 1e-5, (rel(dx.cpu(), dx_ref), rel(dw.cpu(), dw_ref))


@pytest.mark.parametrize("n_prog,E", [(1, 3), (300, 20), (129, 128)])
def test_router_column_sums_kernel(n_prog, E):
    # the router kernel's per-program column sums, added over the programs: several BLOCK_P steps, E not a
    # multiple of BLOCK_E; exact for the counts; each column block's balancing-loss share in fp32 rounding
    psum = torch.rand(n_prog, E, device=DEV)
    cnt = torch.randint(0, 50, (n_prog, E), device=DEV, dtype=torch.int32)
    B = sk.SUMS_BLOCK_E
    n_cb = sk.triton.cdiv(E, B)
    out_c, aux = torch.empty(E, device=DEV, dtype=torch.int64), torch.empty(n_cb, device=DEV)
    sk._router_sums_kernel[(n_cb,)](psum, cnt, out_c, aux, 0.25, n_prog, E, BLOCK_P=128, BLOCK_E=B)
    assert torch.equal(out_c, cnt.sum(0, dtype=torch.int64))
    want = 0.25 * torch.nn.functional.pad(out_c.double() * psum.double().sum(0), (0, B * n_cb - E)).view(n_cb, B).sum(1)
    assert torch.allclose(aux.double(), want, rtol=1e-5)


def test_router_loss_left_unused():
    """The loss computed but not differentiated (its gradient None): x's and the weight's gradients are
    the gates' alone, as with both coefficients zero."""
    T, E, K, d = 30, 8, 2, 16
    x = torch.randn(T, d, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(E, d, dtype=torch.float64)).requires_grad_()
    _, gates_ref, _, _ = reference(x, w, torch.zeros(E), K, "softmax_topk", True, 0.0, 0.0)
    dgates = torch.randn(T, K, dtype=torch.float64)
    ref = torch.autograd.grad((gates_ref * dgates).sum(), (x, w))
    xf, wf = x.detach().float().to(DEV).requires_grad_(), w.detach().float().to(DEV).requires_grad_()
    _, gates, loss, _ = sk.router(xf, wf, torch.zeros(E, device=DEV), K, "softmax_topk", True, "fp32", 0.1, 0.1)
    assert loss.item() > 0
    got = [g.cpu() for g in torch.autograd.grad((gates * dgates.float().to(DEV)).sum(), (xf, wf))]
    assert all(rel(g, r) < 1e-5 for g, r in zip(got, ref)), [rel(g, r) for g, r in zip(got, ref)]


def test_router_weight_halves():
    # bf16x2's stacked halves: hi is the weight rounded, lo what that rounding lost, rounded
    w = torch.randn(5, 48, device=DEV) * 0.02
    dt = torch.bfloat16 if DEV == "cuda" else torch.float16
    parts = sk._weight_parts(torch.zeros(1, 48, device=DEV, dtype=dt), w, "bf16x2")
    hi = w.to(dt)
    assert parts.shape == (10, 48) and parts.dtype == dt
    assert torch.equal(parts[:5], hi) and torch.equal(parts[5:], (w - hi.float()).to(dt))
