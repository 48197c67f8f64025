"""Each sonic expert GEMM, pointer loads against TMA descriptors for the operands that are not gathered
(sonic_kernels.TMA False / True), and TMA with extra configs; bf16 on random top-K routing.
usage: kprobe.py SHAPES OUT.json"""
import sys, json, time
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "h200": (16384, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
EXTRA = {
    sk._wgrad_kernel: [triton.Config(dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=64), num_warps=8, num_stages=3),
                       triton.Config(dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=64), num_warps=8, num_stages=4),
                       triton.Config(dict(BLOCK_M=256, BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=3)],
    sk._down_bwd_kernel: [triton.Config(dict(SPLIT_M=1, NACC=2, BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=3),
                          triton.Config(dict(SPLIT_M=1, NACC=1, BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=4),
                          triton.Config(dict(SPLIT_M=2, NACC=1, BLOCK_N=128, BLOCK_K=64), num_warps=4, num_stages=4),
                          triton.Config(dict(SPLIT_M=1, NACC=2, BLOCK_N=64, BLOCK_K=64), num_warps=8, num_stages=4)],
    sk._grouped_mm_kernel: [triton.Config(dict(BLOCK_N=256, BLOCK_K=64), num_warps=8, num_stages=4)],
    sk._up_swiglu_kernel: [triton.Config(dict(BLOCK_N=128, BLOCK_K=64), num_warps=8, num_stages=3)],
}
BASE = {k: list(k.configs) for k in EXTRA}


def setmode(mode):
    sk.TMA = mode != "ptr"
    for k, base in BASE.items():
        k.configs = base + (EXTRA[k] if mode == "tma+" else [])
        k.cache.clear()


out = []
for name in sys.argv[1].split(","):
    T, d, n, E, K = SHAPES[name]
    torch.manual_seed(0)
    dev = "cuda"
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device=dev) / d ** .5).bfloat16()
    w2 = (torch.randn(E, n, d, device=dev) / n ** .5).bfloat16()
    dout = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    top, idx = torch.randn(T, E, device=dev).topk(K, -1)
    score = torch.softmax(top, -1).flatten()
    pair_tok = torch.arange(T, device=dev).repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), score, T, E)
    R = T * K
    h, a = sk.up_swiglu(x, w1, r)
    dH, Ap, dS = sk.down_bwd(dout, w2, h, r)
    calls = {
        "up": (lambda: sk.up_swiglu(x, w1, r), 2 * R * d * 2 * n),
        "y": (lambda: sk.grouped_mm(a, w2, r), 2 * R * n * d),
        "dA'": (lambda: sk.down_bwd(dout, w2, h, r), 2 * R * d * n),
        "dW2": (lambda: sk.wgrad(Ap, dout, r, gather_a=False, gather_b=True, out_dtype=torch.float32), 2 * R * n * d),
        "dW1": (lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32), 2 * R * d * 2 * n),
        "dX~": (lambda: sk.grouped_mm(dH, w1, r, trans_b=True), 2 * R * 2 * n * d),
    }
    ref = {}
    for mode in ("ptr", "tma", "tma+"):
        setmode(mode)
        for kname, (fn, fl) in calls.items():
            t0 = time.time()
            res = fn()
            torch.cuda.synchronize()
            res = res if isinstance(res, tuple) else (res,)
            if mode == "ptr":
                ref[kname] = res
                err = 0.0
            else:
                err = max(((u.float() - v.float()).norm() / v.float().norm().clamp_min(1e-30)).item()
                          for u, v in zip(res, ref[kname]))
            ms = do_bench(fn, warmup=10, rep=50)
            kern = {"up": sk._up_swiglu_kernel, "y": sk._grouped_mm_kernel, "dA'": sk._down_bwd_kernel,
                    "dW2": sk._wgrad_kernel, "dW1": sk._wgrad_kernel, "dX~": sk._grouped_mm_kernel}[kname]
            cfg = str(kern.best_config)
            row = dict(shape=name, mode=mode, kernel=kname, us=ms * 1e3, tflops=fl / ms / 1e9, rel_err_vs_ptr=err, config=cfg)
            out.append(row)
            print(f"{name:5s} {mode:5s} {kname:4s} {ms*1e3:8.1f} us {fl/ms/1e9:6.0f} TFLOPS  err {err:.1e}  {cfg}"
                  f"  (first call {time.time()-t0:.1f}s)", flush=True)
    del x, w1, w2, dout, h, a, dH, Ap, dS, r, ref
    torch.cuda.empty_cache()
    json.dump(out, open(sys.argv[2], "w"), indent=1)
