"""The whole MoE layer (training defaults, bf16) as a user runs it eagerly: the host's enqueue time of a
forward and of a forward+backward (GPU drained before; median of 25), the GPU's time back to back
(do_bench medians), and the launches one forward and one backward make (torch.profiler's runtime calls).
SRC picks the source tree (the previous commit's copy, or this one)."""
import os, sys, time, statistics
import torch
sys.path.insert(0, os.environ.get("SRC", os.getcwd()))
from torch.profiler import profile, ProfilerActivity
import triton
from model import GPTConfig
import moe

def host_ms(fn, n=25):
    hs = []
    for _ in range(3):
        fn()
    for _ in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter(); fn(); hs.append((time.perf_counter() - t0) * 1e3)
    torch.cuda.synchronize()
    return statistics.median(hs)

def launches(fn):
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU]) as p:
        fn(); torch.cuda.synchronize()
    return sum(1 for e in p.events() if 'LaunchKernel' in e.name or 'cuLaunch' in e.name or 'Memset' in e.name or 'Memcpy' in e.name)

SHAPES = [('1.4B 256/128/8', 40960, 768, 256, 128, 8), ('1.4B 512/64/4', 40960, 768, 512, 64, 4),
          ('1.4B 1024/32/2', 40960, 768, 1024, 32, 2), ('7B 256/128/8', 24576, 1536, 256, 128, 8),
          ('7B 512/64/4', 24576, 1536, 512, 64, 4)]
ONLY = os.environ.get('ONLY')
for label, T, d, n, E, K in SHAPES:
    if ONLY and label not in ONLY.split(','):
        continue
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend='sonic')
    layer = moe.MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(T, d, device='cuda', dtype=torch.bfloat16)
    one = torch.ones((), device='cuda')
    def fwd():
        return layer(x)
    def fb():
        out = layer(x)
        torch.autograd.backward((out, layer.aux_loss), (g, one))
    out = fwd()
    def bwd_only():
        o = layer(x)
        torch.cuda.synchronize()
        return o
    l_f = launches(fwd)
    l_fb = launches(fb)
    hf, hfb = host_ms(fwd), host_ms(fb)
    tf = triton.testing.do_bench(fwd, warmup=25, rep=100)
    tfb = triton.testing.do_bench(fb, warmup=25, rep=100, grad_to_none=[x])
    fl = 6 * T * K * n * d
    print(f"{label:16s} src={os.path.basename(os.environ.get('SRC','tree').rstrip('/'))} launches fwd {l_f} fwd+bwd {l_fb} | "
          f"host fwd {hf*1e3:6.0f} us fwd+bwd {hfb*1e3:6.0f} us | GPU fwd {tf*1e3:6.0f} us ({fl/tf/1e9:4.0f} TFLOPS) "
          f"fwd+bwd {tfb*1e3:6.0f} us ({3*fl/tfb/1e9:4.0f} TFLOPS)", flush=True)
    del layer, x, g
    torch.cuda.empty_cache()
