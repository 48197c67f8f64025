"""One kernel at one shape, launched twice (the first compiles), for Nsight Compute to count the second's DRAM bytes:
cuBLAS's dense GEMM of dA''s size, the tree's dA', or the tree's dA' with its gathered rows from the first 8 MiB of
tokens (pfab.py's window); or the same three for the up-projection (up_*).
usage: ncu_bytes.py {cublas,tree,window,up_cublas,up_tree,up_window} SHAPE   (SHAPE: 1.4B, 7B, 30B, 120B)"""
import sys
import torch
import sonic_kernels as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
kind, name = sys.argv[1], sys.argv[2]
T, d, n, E, K = SHAPES[name]
R = T * K
if kind in ("cublas", "up_cublas"):
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n if kind == "up_cublas" else n, device="cuda", dtype=torch.bfloat16)
    f = lambda: torch.mm(A_, B_)
else:
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    if kind.endswith("window"):
        r = r._replace(gather_idx=r.gather_idx % ((8 << 20) // (2 * d)))
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
    f = lambda: sk._down_bwd_hopper(dO, w2, h, r, dH, Ap)
    if kind.startswith("up_"):   # the up-projection: dO as X, h and A' as its outputs h and a
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        f = lambda: sk._up_hopper(dO, w1, r, dH, Ap)
for _ in range(2):
    f()
torch.cuda.synchronize()
