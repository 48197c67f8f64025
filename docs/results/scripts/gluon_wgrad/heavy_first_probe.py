"""The Hopper weight gradients with their tiles heaviest expert first, dealt forwards and backwards in turn
(this tree), against main's order (.gpu/sk_main.py = `git show f312cae:sonic_kernels.py`) and the Triton
kernel, at h200_moe's layer shape (T=16384, d=1536, n=256, E=128, K=8) and 30B's, fp32 gradients, on
uniform routing and on routing skewed as training's is (per-expert logit biases ~ N(0, SKEW^2): the
busiest expert gets several times the mean load). usage: heavy_first_probe.py OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk
sys.path.insert(0, ".gpu")
import sk_main
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16)}
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    R = T * K
    for skew in (0.0, 1.0, 2.0):
        torch.manual_seed(0)
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
        dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        logits = torch.randn(T, E, device="cuda") + skew * torch.randn(E, device="cuda")
        top, idx = logits.topk(K, -1)
        r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                                torch.softmax(top, -1).flatten(), T, E)
        load = (r.offsets[1:] - r.offsets[:-1]).float()
        print(f"{name} skew {skew}: busiest expert {load.max().item() / load.mean().item():.1f}x the mean", flush=True)
        for call, a, b, ga in [("dW2", ap, dout, False), ("dW1", x, dH, True)]:
            ref = None
            for rnd in range(2):
                for kname, mod, mode in [("triton", sk, False), ("gluon_main", sk_main, None), ("gluon_heavy_first", sk, None)]:
                    mod.HOPPER_WGRAD = mode
                    f = lambda: mod.wgrad(a, b, mod.Routing(*r), gather_a=ga, gather_b=not ga, out_dtype=torch.float32)
                    c = f()
                    ref = c if ref is None else ref
                    err = ((c - ref).norm() / ref.norm()).item()
                    ms = do_bench(f, warmup=10, rep=150)
                    print(f"{name} skew {skew} {call} {kname:18s} round {rnd}: {ms*1e3:7.1f} us  err vs triton {err:.1e}", flush=True)
                    out.append(dict(shape=name, skew=skew, call=call, kernel=kname, round=rnd, us=ms * 1e3, rel_err=err))
                    mod.HOPPER_WGRAD = False
        del x, dout, ap, dH, r
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
