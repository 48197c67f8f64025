"""The deterministic switch's cost by part: attention (SDPA, causal, h200_moe's shape) and the token
embedding's gradient, eager and compiled; and whether compiled attention's backward repeats."""
import os, sys
os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
import torch
import torch.nn.functional as F
torch.utils.deterministic.fill_uninitialized_memory = False


def timed(fn, n=20):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n


g = torch.Generator(device='cuda').manual_seed(0)
q, k, v = (torch.randn(8, 12, 2048, 128, device='cuda', dtype=torch.bfloat16, generator=g).requires_grad_() for _ in range(3))
do = torch.randn(8, 12, 2048, 128, device='cuda', dtype=torch.bfloat16, generator=g)
sdpa = lambda *t: F.scaled_dot_product_attention(*t, is_causal=True)
csdpa = torch.compile(sdpa)
idx = torch.randint(256, (8, 2048), device='cuda', generator=g)
for det in (False, True):
    torch.use_deterministic_algorithms(det)
    torch._dynamo.reset()
    for name, f in (('eager', sdpa), ('compiled', csdpa)):
        def step():
            return torch.autograd.grad(f(q, k, v), (q, k, v), do)
        ref = step()
        same = sum(all(torch.equal(a, b) for a, b in zip(ref, step())) for _ in range(5))
        print(f"det={det} attention {name}: {timed(step):.3f} ms fwd+bwd; 5 repeats bitwise equal: {same}/5", flush=True)
    for V in (256, 50304):
        w = torch.randn(V, 1536, device='cuda', requires_grad=True)
        dy = torch.randn(8, 2048, 1536, device='cuda', dtype=torch.bfloat16, generator=g)
        for name, emb in (('eager', F.embedding), ('compiled', torch.compile(F.embedding))):
            def step():
                with torch.autocast('cuda', torch.bfloat16):
                    return torch.autograd.grad(emb(idx, w), w, dy)[0]
            ref = step()
            same = sum(torch.equal(ref, step()) for _ in range(5))
            print(f"det={det} embedding V={V} {name}: {timed(step):.3f} ms fwd+bwd; 5 repeats bitwise equal: {same}/5", flush=True)
print('backends: flash', torch.backends.cuda.flash_sdp_enabled(), 'cudnn', torch.backends.cuda.cudnn_sdp_enabled(),
      'mem_eff', torch.backends.cuda.mem_efficient_sdp_enabled())
