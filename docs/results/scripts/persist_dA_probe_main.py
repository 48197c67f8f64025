"""The dA' kernel persistent (this tree) against main's (.gpu/sk_old.py = `git show main:sonic_kernels.py`):
us, TFLOPS and agreement of dH, A', dS; TMA by the rule, forced on and off. bf16, random top-K routing.
usage: persist_dA_probe.py SHAPES OUT.json"""
import sys, json, time
import torch, triton
from triton.testing import do_bench
import sonic_kernels as so
sys.path.insert(0, ".gpu")
import sk_try as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []
for name in sys.argv[1].split(","):
    T, d, n, E, K = SHAPES[name]
    torch.manual_seed(0)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** .5).bfloat16()
    w2 = (torch.randn(E, n, d, device="cuda") / n ** .5).bfloat16()
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    top, idx = torch.randn(T, E, device="cuda").topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    h, _ = sk.up_swiglu(x, w1, r)
    fl = 2 * T * K * n * d
    ref = None
    for mode in ("old", "new", "new_tma", "new_notma"):
        m = so if mode == "old" else sk
        sk.TMA = {"new_tma": True, "new_notma": False}.get(mode)
        fn = lambda: m.down_bwd(dout, w2, h, m.Routing(*r))
        res = fn()
        torch.cuda.synchronize()
        if ref is None:
            ref, err = res, 0.0
        else:
            err = max(((u.float() - v.float()).norm() / v.float().norm()).item() for u, v in zip(res, ref))
        ms = do_bench(fn, warmup=10, rep=60)
        cfg = str(m._down_bwd_kernel.best_config)
        out.append(dict(shape=name, mode=mode, us=ms * 1e3, tflops=fl / ms / 1e9, rel_err_vs_old=err, config=cfg))
        print(f"{name:5s} dA' {mode:9s} {ms*1e3:8.1f} us {fl/ms/1e9:6.0f} TFLOPS  err {err:.1e}  {cfg}", flush=True)
    sk.TMA = None
    del x, w1, w2, dout, h, r
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
