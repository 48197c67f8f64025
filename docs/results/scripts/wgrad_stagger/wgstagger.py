"""The Hopper weight gradients (fp32, as training stores them) with the programs' starts staggered by
sonic_kernels.WG_STAGGER_NS (0-3 x that many ns by program id mod 4), so that the tiles' fp32 stores,
which under uniform routing all SMs issue at the same moment, spread out. Uniform and skewed routing,
the five layer shapes, cuBLAS's bmm of the same sizes beside (a part). usage: wgstagger.py OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk
SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
STAGGERS = (0, 500, 1000, 2000)
out = []
for name, (T, d, n, E, K) in SHAPES.items():
    R = T * K
    for skew in ((0.0, 1.0) if name in ("h200_moe", "30B") else (0.0,)):
        torch.manual_seed(0)
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
        dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        logits = torch.randn(T, E, device="cuda") + skew * torch.randn(E, device="cuda")
        top, idx = logits.topk(K, -1)
        r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                                torch.softmax(top, -1).flatten(), T, E)
        for call, a, b, ga in [("dW2", ap, dout, False), ("dW1", x, dH, True)]:
            ref = None
            for rnd in range(2):
                line = []
                for st in STAGGERS:
                    sk.WG_STAGGER_NS = st
                    f = lambda: sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=torch.float32)
                    c = f()
                    ref = c if ref is None else ref
                    ms = do_bench(f, warmup=10, rep=150)
                    line.append(f"{st}:{ms * 1e3:7.1f}{'' if torch.equal(c, ref) else ' DIFF'}")
                    out.append(dict(shape=name, skew=skew, call=call, stagger=st, round=rnd, us=ms * 1e3, equal=torch.equal(c, ref)))
                print(f"{name} skew {skew} {call} round {rnd} (stagger ns: us): " + "  ".join(line), flush=True)
            sk.WG_STAGGER_NS = 0
        per = R // E
        if skew == 0.0:
            A_ = torch.randn(E, d, per, device="cuda", dtype=torch.bfloat16)
            B_ = torch.randn(E, per, 2 * n, device="cuda", dtype=torch.bfloat16)
            try:
                torch.bmm(A_, B_, out_dtype=torch.float32)
                ms = do_bench(lambda: torch.bmm(A_, B_, out_dtype=torch.float32), warmup=10, rep=100)
            except TypeError:
                ms = do_bench(lambda: torch.bmm(A_, B_), warmup=10, rep=100)
            print(f"{name} cuBLAS bmm ({E}x{d}x{per}) @ ({per}x{2 * n}) (part, dW1's size): {ms * 1e3:7.1f} us", flush=True)
            del A_, B_
        del x, dout, ap, dH, r
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
