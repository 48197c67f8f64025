"""The weight gradients at h200_moe's layer shape (T=16384, d=1536, n=256, E=128, K=8; fp32 gradients, as
train.py makes them), the Hopper kernel (HOPPER_WGRAD None) against the Triton one (False), alternated,
with cuBLAS's bmm beside them. usage: wgrad_h200_moe.py OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk
T, d, n, E, K = 16384, 1536, 256, 128, 8
R = T * K
torch.manual_seed(0)
x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
top, idx = torch.randn(T, E, device="cuda").topk(K, -1)
r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                        torch.softmax(top, -1).flatten(), T, E)
out = []
for call, a, b, ga, (m, nn) in [("dW2", ap, dout, False, (n, d)), ("dW1", x, dH, True, (d, 2 * n))]:
    fl = 2 * R * m * nn
    a_ = torch.randn(E, m, R // E, device="cuda", dtype=torch.bfloat16)
    b_ = torch.randn(E, R // E, nn, device="cuda", dtype=torch.bfloat16)
    ms = do_bench(lambda: torch.bmm(a_, b_), warmup=10, rep=200)
    print(f"{call} cuBLAS bmm: {ms*1e3:7.1f} us {fl/ms/1e9:5.0f} TFLOPS", flush=True)
    out.append(dict(call=call, kernel="cublas_bmm", us=ms * 1e3))
    for rnd in range(3):
        for mode in ((None, False) if rnd % 2 == 0 else (False, None)):
            sk.HOPPER_WGRAD = mode
            f = lambda: sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=torch.float32)
            ms = do_bench(f, warmup=10, rep=200)
            k = "gluon" if mode is None else "triton"
            print(f"{call} {k:6s} round {rnd}: {ms*1e3:7.1f} us {fl/ms/1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(call=call, kernel=k, round=rnd, us=ms * 1e3, tflops=fl / ms / 1e9))
json.dump(out, open(sys.argv[1], "w"), indent=1)
