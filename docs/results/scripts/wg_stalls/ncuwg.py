"""The Hopper weight-gradient kernel (dW1 or dW2, bf16 as bench.py's layer) at one shape, launched twice (the first
compiles), for Nsight Compute to read the second. usage: ncuwg.py {dW1,dW2} SHAPE   (SHAPE: 1.4B, 7B, 30B, 120B)"""
import sys
import torch
import sonic_kernels as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
kind, name = sys.argv[1], sys.argv[2]
T, d, n, E, K = SHAPES[name]
g = torch.Generator(device="cuda").manual_seed(0)
top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                        torch.softmax(top, -1).flatten(), T, E)
R = T * K
order = sk.expert_order(r.offsets)
if kind == "dW1":
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    f = lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, order=order)
else:
    Ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    f = lambda: sk.wgrad(Ap, dO, r, gather_a=False, gather_b=True, order=order)
for _ in range(2):
    f()
torch.cuda.synchronize()
