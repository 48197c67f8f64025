"""_router_fwd_kernel's tile (rows a program) and warps at the paper's router shapes: time of the kernel
alone (do_bench, configs alternated over rounds) and its outputs against the default config's."""
import os, sys, statistics, itertools
import torch, triton
sys.path.insert(0, os.getcwd())
import sonic_kernels as sk
from triton.testing import do_bench

shapes = [('1.4B 256/128/8', 40960, 128, 8), ('7B 256/128/8', 24576, 128, 8), ('30B 256/256/16', 32768, 256, 16),
          ('120B 2048/64/4', 32768, 64, 4), ('30B 1024/64/4', 32768, 64, 4), ('120B 512/256/16', 32768, 256, 16)]
cfgs = [(2048, 4), (2048, 2), (2048, 1), (1024, 1), (1024, 2), (4096, 2), (4096, 1), (512, 1)]
dev = 'cuda'
for label, T, E, K in shapes:
    torch.manual_seed(0)
    logits = torch.randn(T, 2 * E, device=dev)      # two parts (bf16x2)
    bias = torch.zeros(E, device=dev)
    res, times = {}, {c: [] for c in cfgs}
    def launch(cfg, out):
        elems, warps = cfg
        bt = sk._router_block_t(E, elems)
        grid = triton.cdiv(T, bt)
        idx, gates, lse, ssum, psum, cnt, zp = out
        sk._router_fwd_kernel[(grid,)](logits, bias, idx, gates, lse, ssum, psum, cnt, T, E, logits.stride(0),
                                       zp, 1e-3, K=K, ROUTER=0, NORM=True, PARTS=2, ZLOSS=True, BLOCK_T=bt,
                                       BLOCK_E=triton.next_power_of_2(E), BLOCK_K=triton.next_power_of_2(K),
                                       num_warps=warps)
    outs = {}
    for c in cfgs:
        bt = sk._router_block_t(E, c[0]); grid = triton.cdiv(T, bt)
        outs[c] = (torch.empty(T, K, device=dev, dtype=torch.int64), torch.empty(T, K, device=dev),
                   torch.empty(T, device=dev), torch.empty(T, device=dev), torch.empty(grid, E, device=dev),
                   torch.empty(grid, E, device=dev, dtype=torch.int32), torch.empty(grid, device=dev))
        launch(c, outs[c])
    torch.cuda.synchronize()
    for rnd in range(3):
        for c in cfgs:
            times[c].append(do_bench(lambda: launch(c, outs[c]), warmup=10, rep=50))
    ref = outs[cfgs[0]]
    line = []
    for c in cfgs:
        o = outs[c]
        same = torch.equal(o[0], ref[0]) and torch.equal(o[1], ref[1]) and torch.equal(o[2], ref[2])
        ps = (o[4].sum(0) - ref[4].sum(0)).abs().max().item()
        cn = torch.equal(o[5].sum(0), ref[5].sum(0))
        line.append(f"{c[0]}/{c[1]}w {statistics.median(times[c])*1e3:6.1f}us{'' if same and cn else ' DIFF'}")
    print(f"{label}: " + " | ".join(line), flush=True)
