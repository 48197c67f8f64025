"""Why the whole layer's fwd+bwd at the 120B shapes takes more than its forward and its backward
timed apart (bench.py): the allocator's counters around each timing, the step split by CUDA events."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
from model import GPTConfig
import moe
from triton.testing import do_bench

shapes = [('120B 2048/64/4', 32768, 4096, 2048, 64, 4), ('120B 1024/128/8', 32768, 4096, 1024, 128, 8),
          ('30B 256/256/16', 32768, 4096, 256, 256, 16)]
def stats():
    s = torch.cuda.memory_stats()
    return {k: s.get(k, 0) for k in ('num_alloc_retries', 'num_device_alloc', 'num_device_free')}
for label, T, d, n, E, K in shapes:
    torch.manual_seed(1337)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend='sonic')
    layer = moe.MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn(T, d, device='cuda', dtype=torch.bfloat16)
    leaves = [x, *layer.parameters()]
    def backward(out, retain_graph=False):
        aux = layer.aux_loss
        torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)], retain_graph=retain_graph)
    def step():
        backward(layer(x))
    step(); torch.cuda.synchronize()
    fl = 18 * T * K * n * d
    def tb(fn, g=None, reps=15):
        s0 = stats()
        ms = do_bench(fn, warmup=25, rep=reps * 45, grad_to_none=g, return_mode='median')
        s1 = stats()
        return ms, {k: s1[k] - s0[k] for k in s0}
    f, sf = tb(lambda: layer(x))
    out = layer(x)
    b, sb = tb(lambda: backward(out, retain_graph=True), leaves)
    del out
    fb, sfb = tb(step, leaves)
    print(f"{label}: fwd {f:.2f} {sf}; bwd {b:.2f} {sb}; f+b {fb:.2f} {sfb}; sum {f+b:.2f}, "
          f"f+b {fl/fb/1e9:.0f} TFLOPS against the parts' {fl/(f+b)/1e9:.0f}", flush=True)
    # the step split by events, 10 runs, grads cleared before each as do_bench does
    ev = [[torch.cuda.Event(enable_timing=True) for _ in range(3)] for _ in range(10)]
    for i in range(10):
        for t in leaves: t.grad = None
        torch.cuda.synchronize()
        ev[i][0].record(); o = layer(x); ev[i][1].record(); backward(o); ev[i][2].record()
        del o
    torch.cuda.synchronize()
    fs = [e[0].elapsed_time(e[1]) for e in ev]; bs = [e[1].elapsed_time(e[2]) for e in ev]
    print(f"  in a step, synced before each: fwd {statistics.median(fs):.2f} bwd {statistics.median(bs):.2f} "
          f"(bwd min {min(bs):.2f} max {max(bs):.2f})", flush=True)
    # back to back, no sync: does the backward slow when the next forward follows at once?
    for i in range(10):
        for t in leaves: t.grad = None
        ev[i][0].record(); o = layer(x); ev[i][1].record(); backward(o); ev[i][2].record()
        del o
    torch.cuda.synchronize()
    fs = [e[0].elapsed_time(e[1]) for e in ev]; bs = [e[1].elapsed_time(e[2]) for e in ev]
    print(f"  back to back: fwd {statistics.median(fs):.2f} bwd {statistics.median(bs):.2f}; "
          f"alloc {stats()}", flush=True)
    del layer, x, dout, leaves
    torch.cuda.empty_cache()
