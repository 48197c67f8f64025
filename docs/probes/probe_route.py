# GPU probe for docs/PERF.md (written in session 6, first run in session 7): what token rounding costs in a
# training step beyond the experts. bench.py times the experts with the routing made beforehand; a
# step also runs the router and model.round_tokens in every layer. On two H200s a DDP step of
# configs/h200_moe.py took 146.5 ms with rounding against 129.7 with top-K (runs 2 and 4), while
# the experts alone gain 3-4% at E=128. Per E and routing this prints, for one MoE layer at
# (T, d, n, K) = (16384, 1536, 256, 8), sonic, bf16 autocast, train mode:
#   module   MoE(config) forward+backward: router, routing, experts, router losses (ms)
#   experts  model.experts_sonic forward+backward on the same routing, made beforehand (ms)
#   route    route_topk + round_tokens alone, forward only (ms)
# then the module's 12 costliest CUDA kernels (torch.profiler).
# 'compare' checks model.round_tokens against its first version (v1, kept below: a sort of the
# whole (T, E) score matrix and a T*E compaction) in every mode, and times both, forward and
# forward+backward: v1, v2 (two torch.topk per expert) and v2 fused (the sonic path, one Triton
# radix select per expert). (Session 6's 'select' mode timed two top-`tile` selections along T of the
# (T, E) matrix: 1.1 ms at every E, slower than v1's sort; session 7 rewrote round_tokens instead.)
# Run from the repo root:  python docs/probes/probe_route.py [compare] [layer]
# On a CPU, `python docs/probes/probe_route.py cpu [compare] [layer]` checks the probe's logic on a
# tiny shape with the torch backend (its times mean nothing there).
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import time
import torch
import model

cpu = 'cpu' in sys.argv[1:]
what = [a for a in sys.argv[1:] if a != 'cpu'] or ['compare', 'layer']
dev = 'cpu' if cpu else 'cuda'
T, d, n, K = (256, 64, 32, 4) if cpu else (16384, 1536, 256, 8)
ES = (8, 16) if cpu else (128, 256, 512)


def ms(f, reps=20):
    # mean ms per call after two warm-up calls; triton's do_bench on a GPU
    if not cpu:
        from triton.testing import do_bench
        return do_bench(f, warmup=10, rep=100)
    f(); f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps * 1e3


def probe(E, rounding):
    torch.manual_seed(0)
    cfg = model.GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, token_rounding=rounding,
                          moe_backend='torch' if cpu else 'sonic')
    moe = model.MoE(cfg).to(dev).train()
    x = torch.randn(T, d, device=dev, requires_grad=True)
    dy = torch.randn(T, d, device=dev)
    ac = torch.autocast(dev, dtype=torch.bfloat16)

    def module():
        moe.zero_grad(set_to_none=True); x.grad = None
        with ac:
            out = moe(x)
        (out.float() * dy).sum().backward()
    # the routing this module makes, for the experts-only timing
    with torch.no_grad():
        logits = x @ moe.router.weight.t()
        idx, gates, probs = model.route_topk(logits, cfg, moe.expert_bias)
        if rounding:
            pt, pe, ps, _, _ = model.round_tokens(idx, gates, probs, cfg.rounding_tile, cfg.rounding_mode)
        else:
            pt, pe, ps = torch.arange(T, device=dev).repeat_interleave(K), idx.flatten(), gates.flatten()
    ps = ps.clone().requires_grad_()

    def experts():
        for t in (x, moe.w1, moe.w2, ps):
            t.grad = None
        with ac:
            out = model.EXPERT_BACKENDS[cfg.moe_backend](x, moe.w1, moe.w2, pt, pe, ps)
        (out.float() * dy).sum().backward()

    def route():
        with torch.no_grad():
            i, g, p = model.route_topk(logits, cfg, moe.expert_bias)
            if rounding:
                model.round_tokens(i, g, p, cfg.rounding_tile, cfg.rounding_mode)

    t_mod, t_exp, t_route = ms(module), ms(experts), ms(route)
    name = 'rounding' if rounding else 'topk'
    print(f"E={E:4d} {name:8s} module {t_mod:7.3f} ms  experts {t_exp:7.3f} ms  route {t_route:6.3f} ms  "
          f"module - experts {t_mod - t_exp:6.3f} ms", flush=True)
    if not cpu:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                module()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by='cuda_time_total', row_limit=12), flush=True)
    return t_mod, t_exp


def round_tokens_v1(idx, gates, probs, tile, mode):
    # model.round_tokens up to session 6: a stable sort of the whole (T, E) key, then a T*E compaction
    T, E = probs.shape
    chosen = torch.zeros(T, E, dtype=torch.bool, device=probs.device).scatter_(1, idx, True)
    f = chosen.sum(0)                                                   # (E,) top-K counts
    lo, hi = (f // tile) * tile, ((f + tile - 1) // tile) * tile
    if mode == "down":
        c = lo
    elif mode == "up":
        c = hi
    else:  # nearest; ties go up
        c = torch.where(f - lo >= hi - f, hi, lo)
    c = torch.where(c > T, lo, c)                                       # an expert cannot take more than T
    # rank every token for every expert: chosen ones first, each group by descending score
    key = probs.detach() + 2.0 * chosen                                 # probs are in [0, 1]
    order = torch.sort(key, dim=0, descending=True, stable=True).indices  # (T, E)
    rank_ok = torch.arange(T, device=probs.device)[:, None] < c[None, :]
    sel = torch.zeros_like(chosen).scatter_(0, order, rank_ok)          # (T, E)
    # gates: the router's gate where the token chose the expert, its full-matrix score where added
    gate_full = torch.zeros_like(probs).scatter(1, idx, gates)
    gate_full = torch.where(chosen, gate_full, probs)
    # compact sel (token-major) into fixed-capacity slots without a host sync
    R_max = min(T * E, T * idx.shape[1] + E * {"up": tile - 1, "down": 0}.get(mode, tile // 2))
    flat = sel.flatten()
    pos = torch.where(flat, torch.cumsum(flat, 0) - 1, R_max)         # unselected go to a dump slot
    src = torch.full((R_max + 1,), T * E, dtype=torch.long, device=probs.device)
    src.scatter_(0, pos, torch.arange(T * E, device=probs.device))
    src = src[:R_max]                                                   # flat (t*E + e), or T*E if unused
    valid = src < T * E
    pair_tok = torch.where(valid, src // E, T)
    pair_exp = torch.where(valid, src % E, E)
    pair_score = torch.cat([gate_full.flatten(), gate_full.new_zeros(1)])[src]
    return pair_tok, pair_exp, pair_score, sel, chosen


def compare(E, tile=128, mode='nearest'):
    # v1 against model.round_tokens: the same pairs (up to ties: v1's key probs + 2 rounds scores
    # within ~2.4e-7 together, the new one compares raw scores), the same scores, then forward and
    # forward+backward times (the backward runs through pair_score into gates and probs)
    torch.manual_seed(0)
    logits = torch.randn(T, E, device=dev, requires_grad=True)
    probs = torch.softmax(logits, -1)
    top, idx = torch.topk(logits, K, -1)
    gates = torch.softmax(top, -1)
    a, b = round_tokens_v1(idx, gates, probs, tile, mode), model.round_tokens(idx, gates, probs, tile, mode)
    if not cpu:  # the sonic path against the top-k path: identical unless two scores tie exactly
        c = model.round_tokens(idx, gates, probs, tile, mode, fused=True)
        assert torch.equal(b[3].sum(0), c[3].sum(0)), "fused: different counts"
        assert torch.equal((probs.double() * b[3]).sum(0), (probs.double() * c[3]).sum(0)), "fused: the selections differ"
        print(f"E={E:4d} {mode}: fused and top-k paths {'identical' if all(map(torch.equal, b, c)) else 'differ by exact ties'}")
    same = torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[3].sum(0), b[3].sum(0)), "different counts"
    key = (probs + 2.0 * a[4]).double().detach()
    assert torch.allclose((key * a[3]).sum(0), (key * b[3]).sum(0), rtol=0, atol=1e-9), "the selections differ"
    if same:
        assert torch.equal(a[2], b[2]), "different scores"
    print(f"E={E:4d} {mode}: pair lists {'identical' if same else 'differ by ties'}; "
          f"{int((a[3] != b[3]).sum()) // 2} tied tokens chosen differently", flush=True)
    g = torch.randn(a[2].shape, device=dev)
    fused = lambda *args: model.round_tokens(*args, fused=True)
    for name, fn in (('v1', round_tokens_v1), ('topk', model.round_tokens)) + ((('fused', fused),) if not cpu else ()):
        t_f = ms(lambda: fn(idx, gates, probs, tile, mode))
        def fb():
            logits.grad = None
            out = fn(idx, gates, probs, tile, mode)
            torch.autograd.backward(out[2], g, retain_graph=True)
        t_fb = ms(fb)
        print(f"E={E:4d} {mode} round_tokens {name:5s}: forward {t_f:.3f} ms, forward+backward {t_fb:.3f} ms", flush=True)
    if not cpu:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                logits.grad = None
                torch.autograd.backward(fused(idx, gates, probs, tile, mode)[2], g, retain_graph=True)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by='cuda_time_total', row_limit=10), flush=True)


if 'layer' in what:
    for E in ES:
        (m0, e0), (m1, e1) = probe(E, False), probe(E, True)
        print(f"E={E:4d} top-K / rounded: module {m0 / m1:.3f}x, experts {e0 / e1:.3f}x", flush=True)
if 'compare' in what:
    for E in ES:
        for mode in ('nearest', 'up', 'down'):
            compare(E, tile=16 if cpu else 128, mode=mode)
