"""One Hopper expert kernel at one shape, launched twice (the first compiles), for Nsight Compute to read
the second. usage: ncuprobe.py {up,dA} SHAPE   (SHAPE: 1.4B, 7B, 30B, 120B)"""
import sys
import torch
import sonic_kernels as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
kind, name = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:   # the evict_first copy
    import tempfile
    sys.path.insert(0, 'docs/results/scripts/evict')
    import evict
    sk = evict.load('ef', tempfile.mkdtemp())
T, d, n, E, K = SHAPES[name]
g = torch.Generator(device="cuda").manual_seed(0)
top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                        torch.softmax(top, -1).flatten(), T, E)
R = T * K
if kind == "up":
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    f = lambda: sk.up_swiglu(x, w1, r)
else:
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    f = lambda: sk.down_bwd(dout, w2, h, r)
for _ in range(2):
    f()
torch.cuda.synchronize()
