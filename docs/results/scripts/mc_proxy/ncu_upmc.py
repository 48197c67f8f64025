"""One launch of upmc.py's kernel at 120B 2048/64/4 for Nsight Compute (call6.sh): after a warm-up launch, the second.
usage: ncu_upmc.py CTAS STORE"""
import sys
import torch
import upmc

ctas, store = int(sys.argv[1]), int(sys.argv[2])
T, d, n, E, K = 32768, 4096, 2048, 64, 4
r = upmc.routing(T, E, K)
x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
for _ in range(2):
    upmc.up_mc(x, w1, r, ctas=ctas, store=store)
torch.cuda.synchronize()
