"""The weight-gradient kernel (dW2 = A'^T @ dO[gather], dW1 = X[gather]^T @ dH) at fixed configs, against
cuBLAS's bmm over E equal row blocks of the same sizes; bf16 inputs, fp32 and bf16 outputs, random
top-K routing. usage: wgrad_configs.py SHAPES OUT.json"""
import sys, json
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages); the first three are the tree's configs
CFGS = [(128, 128, 64, 4, 2), (128, 128, 64, 4, 3), (128, 128, 32, 4, 4), (128, 128, 64, 4, 4),
        (128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 128, 4, 2)]
out = []
for name in sys.argv[1].split(","):
    T, d, n, E, K = SHAPES[name]
    R = T * K
    torch.manual_seed(0)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    top, idx = torch.randn(T, E, device="cuda").topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    for call, fn, (m, k, nn) in [
            ("dW2", lambda dt: sk.wgrad(ap, dout, r, gather_a=False, gather_b=True, out_dtype=dt), (n, R // E, d)),
            ("dW1", lambda dt: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=dt), (d, R // E, 2 * n))]:
        fl = 2 * R * m * nn
        a_ = torch.randn(E, m, k, device="cuda", dtype=torch.bfloat16)
        b_ = torch.randn(E, k, nn, device="cuda", dtype=torch.bfloat16)
        ms = do_bench(lambda: torch.bmm(a_, b_), warmup=10, rep=50)
        out.append(dict(shape=name, call=call, cfg="cublas_bmm", us=ms * 1e3, tflops=fl / ms / 1e9))
        print(f"{name:5s} {call} cuBLAS bmm: {ms*1e3:8.1f} us {fl/ms/1e9:5.0f} TFLOPS", flush=True)
        del a_, b_
        for dt in (torch.float32, torch.bfloat16):
            ref = None
            for bm, bn, bk, w, s in CFGS:
                sk._wgrad_kernel.configs = [triton.Config(dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk), num_warps=w, num_stages=s)]
                sk._wgrad_kernel.cache.clear()
                try:
                    c = fn(dt).float()
                    ms = do_bench(lambda: fn(dt), warmup=10, rep=50)
                except Exception as e:
                    print(name, call, bm, bn, bk, w, s, "failed", type(e).__name__, str(e)[:100], flush=True)
                    continue
                ref = c if ref is None else ref
                err = ((c - ref).norm() / ref.norm()).item()
                out.append(dict(shape=name, call=call, out=str(dt), cfg=(bm, bn, bk, w, s), us=ms * 1e3,
                                tflops=fl / ms / 1e9, rel_err_vs_first=err))
                print(f"{name:5s} {call} {str(dt)[6:]:8s} {bm}x{bn}x{bk} w{w} s{s}: {ms*1e3:8.1f} us "
                      f"{fl/ms/1e9:5.0f} TFLOPS err {err:.1e}", flush=True)
                del c
    del x, dout, ap, dH, r
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
