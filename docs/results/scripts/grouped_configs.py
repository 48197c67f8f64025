"""Persistent grouped_mm (y and dX~) at fixed configs, TMA on; bf16, random top-K routing."""
import sys, json
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
CFGS = [(256, 64, 8, 3), (256, 64, 8, 4), (128, 64, 8, 4), (128, 64, 4, 4), (256, 32, 8, 5), (128, 128, 8, 3)]
out = []
for name in sys.argv[1].split(","):
    T, d, n, E, K = SHAPES[name]
    torch.manual_seed(0)
    a = torch.randn(T * K, n, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(T * K, 2 * n, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** .5).bfloat16()
    w2 = (torch.randn(E, n, d, device="cuda") / n ** .5).bfloat16()
    top, idx = torch.randn(T, E, device="cuda").topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    for call, fn, fl in [("y", lambda: sk.grouped_mm(a, w2, r), 2 * T * K * n * d),
                         ("dX~", lambda: sk.grouped_mm(dH, w1, r, trans_b=True), 4 * T * K * n * d)]:
        for bn, bk, w, s in CFGS:
            sk._grouped_mm_kernel.configs = [triton.Config(dict(BLOCK_N=bn, BLOCK_K=bk), num_warps=w, num_stages=s)]
            sk._grouped_mm_kernel.cache.clear()
            try:
                ms = do_bench(fn, warmup=10, rep=50)
            except Exception as e:
                print(name, call, bn, bk, w, s, "failed", type(e).__name__, str(e)[:100], flush=True)
                continue
            out.append(dict(shape=name, call=call, cfg=(bn, bk, w, s), us=ms * 1e3, tflops=fl / ms / 1e9))
            print(f"{name:5s} {call:4s} BN{bn} BK{bk} w{w} s{s}: {ms*1e3:8.1f} us {fl/ms/1e9:5.0f} TFLOPS", flush=True)
    del a, dH, w1, w2, r
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
