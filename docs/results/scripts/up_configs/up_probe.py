"""The up-projection (_up_swiglu_kernel) at each of a list of configs, forced one at a time: its time at
h200_moe's layer shape and the paper's four, and each config's h and a against float64 at the first
shape. Configs with BLOCK_N = 64 and 3 stages or fewer fit two programs an SM, so that one's epilogue
runs under the other's main loop. usage: up_probe.py OUT.json"""
import sys, json
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk

CONFIGS = [  # (BLOCK_N, BLOCK_K, warps, stages)
    (128, 64, 8, 4), (128, 32, 8, 5), (128, 64, 8, 3),
    (64, 64, 4, 3), (64, 64, 4, 2), (64, 64, 8, 3), (64, 32, 4, 6), (64, 128, 4, 2),
]
kern = sk._up_swiglu_kernel
default = list(kern.configs)

def force(cfg):
    bn, bk, w, s = cfg
    kern.configs = [triton.Config(dict(BLOCK_N=bn, BLOCK_K=bk), num_warps=w, num_stages=s)]
    kern.cache.clear()

def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()

SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for si, (name, (T, d, n, E, K)) in enumerate(SHAPES.items()):
    torch.manual_seed(0)
    r = routing(T, E, K)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    flops = 2 * T * K * d * 2 * n
    if si == 0:   # float64 reference of h for the first shape (a is checked through h)
        off = r.offsets.tolist()
        xg = x.double()[r.gather_idx.long()]
        want_h = torch.cat([xg[off[e]:off[e + 1]] @ w1[e].double() for e in range(E)])
        gt, up = want_h[:, :n], want_h[:, n:]
        want_a = gt * torch.sigmoid(gt) * up
    for rnd in range(2):
        for cfg in CONFIGS:
            force(cfg)
            try:
                h, a = sk.up_swiglu(x, w1, r)
                ms = do_bench(lambda: sk.up_swiglu(x, w1, r), warmup=10, rep=100)
            except Exception as ex:   # a config that does not fit (shared memory, registers)
                print(f"{name} {cfg} failed: {str(ex).splitlines()[0][:120]}", flush=True)
                continue
            chk = f" h {rel(h, want_h):.1e} a {rel(a, want_a):.1e}" if si == 0 and rnd == 0 else ""
            print(f"{name} {cfg} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:4.0f} TFLOPS{chk}", flush=True)
            out.append(dict(shape=name, cfg=cfg, round=rnd, us=ms * 1e3))
    del x, w1, r
    torch.cuda.empty_cache()
kern.configs = default
kern.cache.clear()
json.dump(out, open(sys.argv[1], "w"), indent=1)
