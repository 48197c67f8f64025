"""Where the whole layer's eager forward spends host time at the small shapes: each piece's enqueue
time (GPU drained before, no sync after; median of 25) beside its GPU time (CUDA events, median)."""
import os, sys, time, statistics
import torch
sys.path.insert(0, os.environ.get("SRC", os.getcwd()))
from model import GPTConfig
import moe, sonic_kernels as sk

def host_and_gpu(fn, n=25):
    hs, gs = [], []
    for _ in range(3):
        fn()
    for _ in range(n):
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter(); s.record(); fn(); e.record(); hs.append((time.perf_counter() - t0) * 1e3)
        torch.cuda.synchronize(); gs.append(s.elapsed_time(e))
    return statistics.median(hs), statistics.median(gs)

for label, T, d, n, E, K in [('1.4B 1024/32/2', 40960, 768, 1024, 32, 2), ('1.4B 256/128/8', 40960, 768, 256, 128, 8),
                             ('7B 512/64/4', 24576, 1536, 512, 64, 4)]:
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend='sonic')
    layer = moe.MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
    rows = []
    rows.append(('whole forward (grad on)', *host_and_gpu(lambda: layer(x))))
    with torch.no_grad():
        rows.append(('whole forward (no_grad)', *host_and_gpu(lambda: layer(x))))
    rw = layer.router.weight
    rows.append(('router op', *host_and_gpu(lambda: sk.router(x, rw, layer.expert_bias, K, cfg.router_type, cfg.norm_topk_prob, cfg.router_dtype))))
    idx, gates, lse, psum, choices = sk.router(x, rw, layer.expert_bias, K, cfg.router_type, cfg.norm_topk_prob, cfg.router_dtype)
    def glue():
        pt = torch.arange(T, device=x.device).repeat_interleave(K)
        z = torch.zeros((), dtype=torch.long, device=x.device)
        l = layer.router_losses(psum / T, lse, choices, T * K)
        return pt, idx.flatten(), gates.flatten()
    rows.append(('glue: pair_tok, zeros, loss', *host_and_gpu(glue)))
    pt, pe, ps = glue()
    rows.append(('moe_experts (autograd)', *host_and_gpu(lambda: sk.moe_experts(x, layer.w1, layer.w2, pt, pe, ps))))
    try:
        sk.routing_metadata(None, pe, ps.detach().float(), T, E)
        rows.append(('moe_experts, pair_tok None', *host_and_gpu(lambda: sk.moe_experts(x, layer.w1, layer.w2, None, pe, ps))))
        rows.append(('  routing_metadata, None', *host_and_gpu(lambda: sk.routing_metadata(None, pe, ps.detach().float(), T, E))))
    except Exception as e:
        print('no pair_tok None path here:', type(e).__name__)
    xd, w1, w2 = x.detach(), layer.w1.detach(), layer.w2.detach()
    score = ps.detach().float().contiguous()
    rows.append(('  routing_metadata', *host_and_gpu(lambda: sk.routing_metadata(pt, pe, score, T, E))))
    r = sk.routing_metadata(pt, pe, score, T, E)
    rows.append(('  up_swiglu', *host_and_gpu(lambda: sk.up_swiglu(xd, w1, r))))
    h, a = sk.up_swiglu(xd, w1, r)
    rows.append(('  grouped_mm', *host_and_gpu(lambda: sk.grouped_mm(a, w2, r))))
    y = sk.grouped_mm(a, w2, r)
    rows.append(('  gather_sum', *host_and_gpu(lambda: sk.gather_sum(y, r, score))))
    rows.append(('one torch op (x.sum)', *host_and_gpu(lambda: x.sum())))
    print(label, 'src', os.environ.get('SRC', 'tree'))
    for name, hms, gms in rows:
        print(f"  {name:32s} host {hms*1e3:7.0f} us   gpu {gms*1e3:7.0f} us", flush=True)
    del layer, x, h, a, y, r
    torch.cuda.empty_cache()
