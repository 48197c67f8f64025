"""The router's forward (router_fwd_impl: logits GEMM, selection kernel, column sums, loss) with the
selection kernel's previous config (2048 elements on 4 warps, a block a program) against the new one (512
on 1 warp, programs walking several blocks): outputs, and time alternated over rounds (do_bench, us)."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import sonic_kernels as sk
from triton.testing import do_bench

shapes = [('1.4B 256/128/8', 40960, 768, 128, 8), ('7B 256/128/8', 24576, 1536, 128, 8),
          ('30B 256/256/16', 32768, 4096, 256, 16), ('120B 2048/64/4', 32768, 4096, 64, 4),
          ('120B 512/256/16', 32768, 4096, 256, 16), ('h200_moe', 16384, 1536, 128, 8)]
cfgs = {'old': (2048, 4, 1 << 30), 'new': (512, 1, 4096)}
def use(c):
    sk.ROUTER_FWD_ELEMS, sk.ROUTER_FWD_WARPS, sk.ROUTER_FWD_PROGRAMS = cfgs[c]
for label, T, d, E, K in shapes:
    torch.manual_seed(0)
    x = torch.randn(T, d, device='cuda', dtype=torch.bfloat16)
    w = torch.randn(E, d, device='cuda') / d ** 0.5
    bias = torch.zeros(E, device='cuda')
    for router in (0, 2):
        f = lambda: sk.router_fwd_impl(x, w, bias, K, router, True, 'bf16x2', 0.01, 0.001)
        outs, times = {}, {c: [] for c in cfgs}
        for c in cfgs:
            use(c); outs[c] = f()
        for _ in range(3):
            for c in cfgs:
                use(c); times[c].append(do_bench(f, warmup=10, rep=60))
        o, n = outs['old'], outs['new']
        same_idx = torch.equal(o[0], n[0]) and torch.equal(o[3], n[3])
        g = ((o[1] - n[1]).abs().max() / o[1].abs().max()).item()
        l = abs((o[2] - n[2]).item()) / abs(o[2].item())
        ls = ((o[4] - n[4]).abs().max() / o[4].abs().max()).item()
        print(f"{label} router {router}: old {statistics.median(times['old'])*1e3:6.1f} us "
              f"new {statistics.median(times['new'])*1e3:6.1f} us | idx+counts equal {same_idx}, gates {g:.1e}, "
              f"loss {l:.1e}, lse {ls:.1e}", flush=True)
use('new')
