"""The Gluon warp-specialised weight gradient (.gpu/gws.py: one of gws_v1.py to gws_v4.py, `git show 99c3c77:docs/results/scripts/gluon_wgrad/gws_v1.py` and so on) against float64
and against sonic_kernels.wgrad, then timed with cuBLAS's bmm beside it. usage: gws_probe.py small|SHAPES OUT.json"""
import sys, json
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk
sys.path.insert(0, ".gpu")
import gws
import gws_v1
sk._set_allocator()
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
out = []

def routing(T, E, K, skew=False):
    logits = torch.randn(T, E, device="cuda")
    if skew:
        logits[:, 0] = -1e9   # expert 0 gets no rows
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

if sys.argv[1] == "small":
    torch.manual_seed(0)
    for (T, d, n, E, K) in [(700, 320, 160, 6, 2), (300, 256, 128, 4, 3)]:
        r = routing(T, E, K, skew=True)
        R = T * K
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
        dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        gi = r.gather_idx.long()
        off = r.offsets.tolist()
        for name, a, b, ga in [("dW1", x, dH, True), ("dW2", ap, dout, False)]:
            A = a.double()[gi] if ga else a.double()
            B = b.double() if ga else b.double()[gi]
            ref = torch.stack([A[off[e]:off[e + 1]].t() @ B[off[e]:off[e + 1]] for e in range(E)])
            for dt in (torch.float32, torch.bfloat16):
                for stages in (4,):
                    c = gws.wgrad_ws(a, b, r.gather_idx, r.offsets, ga, out_dtype=dt, STAGES=stages, n_prog=5)
                    torch.cuda.synchronize()
                    err = ((c.double() - ref).norm() / ref.norm()).item()
                    zero = c[0].abs().max().item()
                    print(f"small T={T} d={d} n={n} E={E} K={K} {name} {dt} stages={stages}: rel err {err:.2e}, "
                          f"empty expert max {zero}", flush=True)
                    out.append(dict(case="small", T=T, d=d, n=n, E=E, K=K, call=name, out=str(dt), stages=stages, rel_err=err))
else:
    for name in sys.argv[1].split(","):
        T, d, n, E, K = SHAPES[name]
        R = T * K
        torch.manual_seed(0)
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
        dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        r = routing(T, E, K)
        for call, a, b, ga, (m, nn) in [("dW2", ap, dout, False, (n, d)), ("dW1", x, dH, True, (d, 2 * n))]:
            fl = 2 * R * m * nn
            a_ = torch.randn(E, m, R // E, device="cuda", dtype=torch.bfloat16)
            b_ = torch.randn(E, R // E, nn, device="cuda", dtype=torch.bfloat16)
            ms = do_bench(lambda: torch.bmm(a_, b_), warmup=10, rep=50)
            print(f"{name:5s} {call} cuBLAS bmm: {ms*1e3:8.1f} us {fl/ms/1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(shape=name, call=call, kernel="cublas_bmm", us=ms * 1e3, tflops=fl / ms / 1e9))
            del a_, b_
            for dt in (torch.float32, torch.bfloat16):
                f_old = lambda: sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=dt)
                ref = f_old().float()
                kernels = [("triton", f_old), ("gluon", lambda: gws.wgrad_ws(a, b, r.gather_idx, r.offsets, ga, out_dtype=dt))]
                if ga:
                    kernels.append(("gluon_v1", lambda: gws_v1.wgrad_ws(a, b, r.gather_idx, r.offsets, ga, out_dtype=dt)))
                for rnd in range(2):
                    for kname, f in (kernels if rnd == 0 else kernels[::-1]):
                        c = f().float()
                        err = ((c - ref).norm() / ref.norm()).item()
                        ms = do_bench(f, warmup=10, rep=50)
                        print(f"{name:5s} {call} {str(dt)[6:]:8s} {kname:9s}: {ms*1e3:8.1f} us {fl/ms/1e9:5.0f} TFLOPS "
                              f"err vs triton {err:.1e}", flush=True)
                        out.append(dict(shape=name, call=call, out=str(dt), kernel=kname, round=rnd, us=ms * 1e3,
                                        tflops=fl / ms / 1e9, rel_err_vs_triton=err))
        del x, dout, ap, dH, r
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
