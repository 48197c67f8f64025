"""down_bwd and the score gradient's return to pair order: the previous commit's (zero fill, kernel, torch sum,
index) against this one's (kernel, _pair_dscore_kernel), in one process, calls alternating: host time (GPU drained
before, median of 200), GPU time (do_bench) and the largest difference of the pair-order dS."""
import importlib.util, os, statistics, time
import torch, triton
import sonic_kernels as new
spec = importlib.util.spec_from_file_location('sk_old', os.path.join(os.getcwd(), '.gpu/old/sonic_kernels.py'))
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)

def run_old(dout, w2, h, r):
    dH, Ap, dS = old.down_bwd(dout, w2, h, r)
    return dH, Ap, dS[r.rev]
def run_new(dout, w2, h, r):
    return new.down_bwd(dout, w2, h, r)

for label, T, d, n, E, K in [('1.4B 256/128/8', 40960, 768, 256, 128, 8), ('1.4B 1024/32/2', 40960, 768, 1024, 32, 2),
                             ('7B 256/128/8', 24576, 1536, 256, 128, 8), ('h200_moe', 16384, 1536, 256, 128, 8)]:
    torch.manual_seed(0)
    idx = torch.rand(T, E, device='cuda').topk(K, dim=1).indices
    r = new.routing_metadata(None, idx.flatten(), torch.rand(T * K, device='cuda'), T, E)
    dout = torch.randn(T, d, device='cuda', dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device='cuda') / d ** 0.5).to(torch.bfloat16)
    h = torch.randn(T * K, 2 * n, device='cuda', dtype=torch.bfloat16)
    a, b = run_old(dout, w2, h, r), run_new(dout, w2, h, r)
    same = [torch.equal(a[0], b[0]), torch.equal(a[1], b[1]), ((a[2] - b[2]).abs().max() / a[2].abs().max()).item()]
    hs = {'old': [], 'new': []}
    for i in range(200):
        f, key = (run_old, 'old') if i % 2 == 0 else (run_new, 'new')
        torch.cuda.synchronize()
        t0 = time.perf_counter(); f(dout, w2, h, r); hs[key].append((time.perf_counter() - t0) * 1e6)
    torch.cuda.synchronize()
    g = {k: triton.testing.do_bench(lambda f=f: f(dout, w2, h, r), warmup=25, rep=100) * 1e3
         for k, f in (('old', run_old), ('new', run_new))}
    print(f"{label:16s} dH, A' equal {same[0]}, {same[1]}; dS max diff / max {same[2]:.1e} | host old "
          f"{statistics.median(hs['old']):5.0f} us new {statistics.median(hs['new']):5.0f} us | GPU old {g['old']:6.1f} us "
          f"new {g['new']:6.1f} us", flush=True)
