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
# Run from the repo root:  python docs/probes/probe_route.py
# On a CPU, `python docs/probes/probe_route.py cpu` checks the probe's logic on a tiny shape with
# the torch backend (its times mean nothing there).
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import time
import torch
import model

cpu = sys.argv[1:] == ['cpu']
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


for E in ES:
    (m0, e0), (m1, e1) = probe(E, False), probe(E, True)
    print(f"E={E:4d} top-K / rounded: module {m0 / m1:.3f}x, experts {e0 / e1:.3f}x", flush=True)
