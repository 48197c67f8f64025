"""Persistent up / y / dX~ against the tile-per-program kernels (HEAD's), bf16, random top-K routing.
usage: pprobe.py SHAPES OUT.json"""
import sys, json, time
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
sys.path.insert(0, ".gpu")
import sk_old as so

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "h200": (16384, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
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
    ro = so.Routing(*r)
    R = T * K
    h, a = so.up_swiglu(x, w1, ro)
    dH, Ap, dS = so.down_bwd(dout, w2, h, ro)
    calls = {
        "up": (lambda m: m.up_swiglu(x, w1, r), 2 * R * d * 2 * n),
        "y": (lambda m: m.grouped_mm(a, w2, r), 2 * R * n * d),
        "dX~": (lambda m: m.grouped_mm(dH, w1, r, trans_b=True), 2 * R * 2 * n * d),
    }
    for kname, (fn, fl) in calls.items():
        ref = None
        for mode in ("old", "new", "new_tma", "new_notma"):
            m = so if mode == "old" else sk
            sk.TMA = {"new_tma": True, "new_notma": False}.get(mode)
            t0 = time.time()
            res = fn(m)
            torch.cuda.synchronize()
            res = res if isinstance(res, tuple) else (res,)
            if ref is None:
                ref, err = res, 0.0
            else:
                err = max(((u.float() - v.float()).norm() / v.float().norm().clamp_min(1e-30)).item() for u, v in zip(res, ref))
            ms = do_bench(lambda: fn(m), warmup=10, rep=60)
            kern = {"up": m._up_swiglu_kernel, "y": m._grouped_mm_kernel, "dX~": m._grouped_mm_kernel}[kname]
            cfg = str(kern.best_config)
            out.append(dict(shape=name, mode=mode, kernel=kname, us=ms * 1e3, tflops=fl / ms / 1e9, rel_err_vs_old=err, config=cfg))
            print(f"{name:5s} {kname:4s} {mode:9s} {ms*1e3:8.1f} us {fl/ms/1e9:6.0f} TFLOPS  err {err:.1e}  {cfg}"
                  f"  (first {time.time()-t0:.1f}s)", flush=True)
        sk.TMA = None
    del x, w1, w2, dout, h, a, dH, Ap, dS, r, ro
    torch.cuda.empty_cache()
    json.dump(out, open(sys.argv[2], "w"), indent=1)
