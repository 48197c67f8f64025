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
    idx, gates, lse, psum, counts = sk.router(xf, wf, bias.to(DEV), K, router_type, norm, "bf16x2")
    idx, gates, lse, psum = idx.cpu(), gates.cpu(), lse.cpu(), psum.cpu()
    assert torch.equal(idx, idx_ref)
    assert torch.equal(counts.cpu(), torch.bincount(idx_ref.flatten(), minlength=E))
    assert rel(gates, gates_ref) < 1e-6
    loss = aux_coef * E * (f.float() * psum / T).sum() + z_coef * lse.square().mean()  # as MoE.router_losses
    assert abs(loss.item() - loss_ref.item()) <= 1e-6 * abs(loss_ref.item())
    dx, dw = [g.cpu() for g in torch.autograd.grad((gates * dgates.float()).sum() + 3.0 * loss, (xf, wf))]
    assert rel(dx, dx_ref) < 1e-5 and rel(dw, dw_ref) < 1e-5, (rel(dx, dx_ref), rel(dw, dw_ref))


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
        _, gates, lse, psum, _ = sk.router(xf, wf, torch.zeros(E, device=DEV), K, "softmax_topk", True, "fp32")
        loss = aux_coef * E * (f.float().to(DEV) * psum / T).sum() + z_coef * lse.square().mean()
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


@pytest.mark.parametrize("router_type", ["softmax_topk", "sigmoid"])
def test_whole_module_saves_no_T_by_E_or_extra_T_by_d(router_type):
    """The whole MoE module's saved tensors, router and balancing loss included: x once, h, and O(T*K)
    routing state. Nothing of shape (T, E), no second (T, d), no fp32 copy of x."""
    T, d, n, E, K = 96, 32, 16, 12, 2
    cfg = GPTConfig(n_embd=d, n_head=2, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic", router_type=router_type,
                    aux_loss_coef=0.01, z_loss_coef=0.001)
    moe = MoE(cfg).to(DEV).train()
    x = torch.randn(T, d, device=DEV, requires_grad=True)
    params = {p.data_ptr() for p in moe.parameters()}
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = moe(x)
    acts = {t.untyped_storage().data_ptr(): t for t in saved if t.data_ptr() not in params}
    shapes = [tuple(t.shape) for t in acts.values()]
    assert (T, E) not in shapes and (E, T) not in shapes, shapes
    assert sum(1 for s in shapes if s == (T, d)) == 1, shapes          # x, once
    nbytes = sum(t.untyped_storage().nbytes() for t in acts.values())
    # the experts' contract, then the router's idx (int64), gates, lse and its row sums (fp32), and the
    # balancing loss's (E,) vectors (fractions and mean scores)
    want = sk.saved_bytes_formula(T, d, n, T * K, E, 4) + T * K * (8 + 4) + T * (4 + 4) + 4 * E * 4
    assert nbytes <= want, (nbytes, want, shapes)
    (out.sum() + moe.aux_loss).backward()
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
    idx, gates, lse, psum, _ = sk.router(xh, wf, bias.to(DEV), K, router_type, norm, "bf16x2")
    assert torch.equal(idx.cpu(), idx_ref)
    loss = 0.05 * E * (f.float().to(DEV) * psum / T).sum() + 0.01 * lse.square().mean()
    dx, dw = torch.autograd.grad((gates * dgates.float().to(DEV)).sum() + loss, (xh, wf))
    assert dx.dtype == torch.float16 and dw.dtype == torch.float32
    assert rel(dx.cpu(), dx_ref) < 3e-3 and rel(dw.cpu(), dw_ref) < 1e-5, (rel(dx.cpu(), dx_ref), rel(dw.cpu(), dw_ref))


# -----------------------------------------------------------------------------
# The router and the experts as one op (sonic_kernels.moe_layer), which MoE runs under top-K routing

def experts_reference(x, w1, w2, idx, gates):
    """Float64: out[t] = sum_k gates[t, k] * SwiGLU_{idx[t, k]}(x[t])."""
    n = w2.shape[1]
    out = torch.zeros(x.shape, dtype=torch.float64)
    for k in range(idx.shape[1]):
        h = torch.einsum("td,tdj->tj", x.double(), w1.double()[idx[:, k]])      # (T, 2n)
        y = torch.einsum("tj,tjd->td", F.silu(h[:, :n]) * h[:, n:], w2.double()[idx[:, k]])
        out = out + gates[:, k, None] * y
    return out


def layer_inputs(T, d, n, E, dtype):
    x = torch.randn(T, d, dtype=dtype)
    w = torch.randn(E, d) / d ** 0.5
    w1 = (torch.randn(E, d, 2 * n) / d ** 0.5).to(dtype)
    w2 = (torch.randn(E, n, d) / n ** 0.5).to(dtype)
    return x, w, 0.1 * torch.randn(E), w1, w2


def layer_loss(out, gates, lse, psum, idx, g, aux_coef, z_coef):
    """<out, g> plus the balancing loss and the z-loss as MoE.router_losses forms them."""
    E = psum.shape[0]
    f = torch.bincount(idx.flatten(), minlength=E).float() / idx.numel()
    return (out.float() * g).sum() + aux_coef * E * (f * psum / idx.shape[0]).sum() + z_coef * lse.square().mean()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 5e-3)], ids=["fp32", "fp16"])
@pytest.mark.parametrize("router_type,norm", ROUTERS, ids=["softmax_topk", "topk_softmax_norm", "topk_softmax_nonorm",
                                                          "sigmoid"])
def test_moe_layer_matches_two_ops_and_float64(router_type, norm, dtype, tol):
    """moe_layer against router + moe_experts (the same kernels, so the same outputs, weight gradients to
    the bit and dx to the rounding of one sum), and against float64, with the losses on and a random
    gradient on out. The custom op (what torch.compile runs) gives what the eager path gives."""
    T, d, n, E, K = 37, 32, 16, 6, 2
    aux_coef, z_coef = 0.05, 0.01
    x, w, bias, w1, w2 = layer_inputs(T, d, n, E, dtype)
    g = torch.randn(T, d)
    res = {}
    for path in ("layer", "op", "two_ops"):
        leaves = [t.to(DEV).requires_grad_() for t in (x, w, w1, w2)]
        xs, ws, w1s, w2s = leaves
        if path == "layer":
            out, idx, gates, lse, psum, counts = sk.moe_layer(xs, ws, bias.to(DEV), w1s, w2s, K, router_type, norm, "bf16x2")
        elif path == "op":
            out, idx, gates, lse, _, psum, counts = torch.ops.sonic.moe_layer(
                xs, ws, bias.to(DEV), w1s, w2s, K, sk.ROUTER_CODES[router_type], norm, "bf16x2")[:7]
        else:
            idx, gates, lse, psum, counts = sk.router(xs, ws, bias.to(DEV), K, router_type, norm, "bf16x2")
            pair_tok = torch.arange(T, device=DEV).repeat_interleave(K)
            out = sk.moe_experts(xs, w1s, w2s, pair_tok, idx.flatten(), gates.flatten())
        loss = layer_loss(out, gates, lse, psum, idx, g.to(DEV), aux_coef, z_coef)
        res[path] = [t.detach().cpu() for t in (out, idx, gates, lse, psum, counts, *torch.autograd.grad(loss, leaves))]
    names = ["out", "idx", "gates", "lse", "psum", "counts", "dx", "dw", "dw1", "dw2"]
    for name, a, b, c in zip(names, res["layer"], res["op"], res["two_ops"]):
        assert torch.equal(a, b), name
        if name == "dx":
            # the two ops add the router's dx (rounded to x's dtype) to the experts' in a second pass
            assert rel(a, c) < (1e-6 if dtype == torch.float32 else 2e-3), rel(a, c)
        else:
            assert torch.equal(a, c), name

    x64, w64, w1_64, w2_64 = [t.double().requires_grad_() for t in (x, w, w1, w2)]
    idx_ref, gates_ref, loss_ref, _ = reference(x64, w64, bias, K, router_type, norm, aux_coef, z_coef)
    assert torch.equal(res["layer"][1], idx_ref)
    out_ref = experts_reference(x64, w1_64, w2_64, idx_ref, gates_ref)
    want = [out_ref, *torch.autograd.grad((out_ref * g.double()).sum() + loss_ref, (x64, w64, w1_64, w2_64))]
    for name, a, b in zip(["out", "dx", "dw", "dw1", "dw2"], [res["layer"][0]] + res["layer"][6:], want):
        assert rel(a, b) < tol, (name, rel(a, b))


@pytest.mark.parametrize("dtype,router_dtype", [(torch.float32, "fp32"), (torch.float16, "bf16x2"),
                                                (torch.float16, "fp32")])
def test_moe_layer_dx_carries_the_router_terms(dtype, router_dtype):
    """With no gradient on out (the experts give dx = 0), the layer's dx is the router's alone: the
    balancing loss's and the z-loss's, added in place where the experts' dx is written, from half
    dlogits (x in half precision, bf16x2) or fp32 ones."""
    T, d, n, E, K = 24, 32, 16, 8, 2
    x, w, bias, w1, w2 = layer_inputs(T, d, n, E, dtype)
    got = []
    for fused in (True, False):
        xs, ws = x.to(DEV).requires_grad_(), w.to(DEV).requires_grad_()
        if fused:
            _, idx, _, lse, psum, _ = sk.moe_layer(xs, ws, bias.to(DEV), w1.to(DEV), w2.to(DEV), K, "softmax_topk",
                                                   True, router_dtype)
        else:
            idx, _, lse, psum, _ = sk.router(xs, ws, bias.to(DEV), K, "softmax_topk", True, router_dtype)
        loss = layer_loss(torch.zeros(()), torch.zeros(()), lse, psum, idx, 0.0, 0.1, 0.1)
        got.append([t.cpu() for t in torch.autograd.grad(loss, (xs, ws))])
    assert got[1][0].abs().max() > 0                        # the router alone gives x a gradient
    assert got[0][0].dtype == dtype
    # the router alone rounds its dx to x's dtype once, as the layer does
    assert rel(got[0][0], got[1][0]) < (1e-6 if dtype == torch.float32 else 1e-3) and torch.equal(got[0][1], got[1][1])


@pytest.mark.parametrize("extra", [{}, {"token_rounding": True, "rounding_tile": 16}], ids=["topk", "rounding"])
def test_moe_runs_the_layer_op_under_top_k(monkeypatch, extra):
    """MoE with sonic runs the router and the experts as one op (moe_layer) under top-K routing, and
    the router and the experts apart under token rounding, which changes the pairs between them."""
    calls = {"moe_layer": 0, "router": 0, "moe_experts": 0}
    for name in calls:
        def counted(*args, _f=getattr(sk, name), _name=name):
            calls[_name] += 1
            return _f(*args)
        monkeypatch.setattr(sk, name, counted)
    cfg = GPTConfig(n_embd=32, n_head=2, n_expert=4, top_k=2, expert_size=16, moe_backend="sonic",
                    aux_loss_coef=0.01, **extra)
    moe = MoE(cfg).to(DEV).train()
    moe(torch.randn(32, 32, device=DEV)).sum().backward()
    if extra:
        assert calls == {"moe_layer": 0, "router": 0, "moe_experts": 1}, calls  # rounding: the readable router
    else:
        assert calls == {"moe_layer": 1, "router": 0, "moe_experts": 0}, calls


@pytest.mark.parametrize("router_type", ["softmax_topk", "sigmoid"])
def test_moe_layer_under_torch_compile(router_type):
    """torch.compile sees moe_layer as one custom op: tracing runs its fake and its registered autograd
    (backward through the op sonic::moe_layer_bwd). aot_eager runs here without a C++ compiler or a GPU;
    the same kernels run, so the output and every gradient equal eager mode's."""
    cfg = GPTConfig(n_embd=32, n_head=2, n_expert=4, top_k=2, expert_size=16, moe_backend="sonic",
                    router_type=router_type, aux_loss_coef=0.01, z_loss_coef=1e-3)
    moe = MoE(cfg).to(DEV).train()
    x, g = torch.randn(40, 32, device=DEV, requires_grad=True), torch.randn(40, 32, device=DEV)
    res = []
    for m in (moe, torch.compile(moe, backend="aot_eager", fullgraph=True)):
        out = m(x)
        res.append([out, *torch.autograd.grad((out * g).sum() + moe.aux_loss, [x, *moe.parameters()])])
    for a, b in zip(*res):
        assert torch.equal(a, b)
