# GPU probe for docs/PERF.md "Open" (session 6, not yet run on a GPU): what token rounding costs in a
# training step beyond the experts. bench.py times the experts with the routing made beforehand; a
# step also runs the router and model.round_tokens in every layer. On two H200s a DDP step of
# configs/h200_moe.py took 146.5 ms with rounding against 129.7 with top-K (runs 2 and 4), while
# the experts alone gain 3-4% at E=128. Per E and routing this prints, for one MoE layer at
# (T, d, n, K) = (16384, 1536, 256, 8), sonic, bf16 autocast, train mode:
#   module   MoE(config) forward+backward: router, routing, experts, router losses (ms)
#   experts  model.experts_sonic forward+backward on the same routing, made beforehand (ms)
#   route    route_topk + round_tokens alone, forward only (ms)
# then the module's 12 costliest CUDA kernels (torch.profiler).
# 'select' times round_tokens whole and a candidate for its selection step: the sort of the whole
# (T, E) score matrix against two top-`tile` selections per expert (each expert moves by at most
# one tile, so only its `tile` lowest chosen and `tile` highest unchosen tokens can change), after
# checking that both select the same tokens up to ties.
# Run from the repo root:  python docs/probes/probe_route.py [layer] [select]
# On a CPU, `python docs/probes/probe_route.py cpu [layer] [select]` checks the probe's logic on a
# tiny shape with the torch backend (its times mean nothing there).
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import time
import torch
import model

cpu = 'cpu' in sys.argv[1:]
what = [a for a in sys.argv[1:] if a != 'cpu'] or ['layer', 'select']
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


def targets(f, tile, T):
    # round_tokens' per-expert target counts, mode nearest
    lo, hi = (f // tile) * tile, ((f + tile - 1) // tile) * tile
    c = torch.where(f - lo >= hi - f, hi, lo)
    return torch.where(c > T, lo, c)


def select_sort(probs, chosen, c):
    # round_tokens' way: rank every token for every expert, chosen first, each by descending score
    T = probs.shape[0]
    order = torch.sort(probs + 2.0 * chosen, dim=0, descending=True, stable=True).indices
    return torch.zeros_like(chosen).scatter_(0, order, torch.arange(T, device=probs.device)[:, None] < c[None, :])


def select_topk(probs, chosen, c, tile):
    # the candidate: drop the f-c lowest chosen (c < f) or add the c-f highest unchosen (c > f)
    k = min(tile, probs.shape[0])
    f = chosen.sum(0)
    low = torch.topk(torch.where(chosen, probs, 2.0), k, dim=0, largest=False).indices    # (k, E)
    high = torch.topk(torch.where(chosen, -1.0, probs), k, dim=0).indices                  # (k, E)
    j = torch.arange(k, device=probs.device)[:, None]
    sel = chosen.clone()
    sel.scatter_(0, low, torch.where(j < (f - c)[None, :], False, sel.gather(0, low)))
    sel.scatter_(0, high, torch.where(j < (c - f)[None, :], True, sel.gather(0, high)))
    return sel


def select(E, tile=128):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(T, E, device=dev), -1)
    gates, idx = probs.topk(K, -1)
    chosen = torch.zeros(T, E, dtype=torch.bool, device=dev).scatter_(1, idx, True)
    c = targets(chosen.sum(0), tile, T)
    a, b = select_sort(probs, chosen, c), select_topk(probs, chosen, c, tile)
    # the same tokens up to ties: equal scores (the sort's key, probs + 2 in fp32, also ties scores
    # within its rounding, ~2.4e-7) may be broken differently, so compare each expert's key sum
    key = (probs + 2.0 * chosen).double()
    assert torch.equal(a.sum(0), c) and torch.equal(b.sum(0), c), "wrong counts"
    assert torch.allclose((key * a).sum(0), (key * b).sum(0), rtol=0, atol=1e-9), "the selections differ"
    print(f"E={E:4d}: {int((a != b).sum()) // 2} tied tokens chosen differently", flush=True)
    t_all = ms(lambda: model.round_tokens(idx, gates, probs, tile, 'nearest'))
    t_sort, t_topk = ms(lambda: select_sort(probs, chosen, c)), ms(lambda: select_topk(probs, chosen, c, tile))
    print(f"E={E:4d} tile={tile}: round_tokens {t_all:.3f} ms, of which the sort selection {t_sort:.3f} ms; "
          f"top-tile selection {t_topk:.3f} ms", flush=True)


if 'layer' in what:
    for E in ES:
        (m0, e0), (m1, e1) = probe(E, False), probe(E, True)
        print(f"E={E:4d} top-K / rounded: module {m0 / m1:.3f}x, experts {e0 / e1:.3f}x", flush=True)
if 'select' in what:
    for E in ES:
        select(E, tile=16 if cpu else 128)
