"""The whole MoE module (router, balancing loss, experts; bf16, training defaults) with the Hopper weight
gradients (sonic_kernels.HOPPER_WGRAD = None, the default) and without (False), alternated in one process,
ROUNDS rounds, do_bench over REP ms so that a 40 ms fwd+bwd is timed ~10 times.
usage: layer_ab.py SHAPES ROUNDS REP OUT.json"""
import sys, json
import torch
from triton.testing import do_bench
import sonic_kernels as sk
from model import GPTConfig
from moe import MoE
SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
rows = []
for name in sys.argv[1].split(","):
    T, d, n, E, K = SHAPES[name]
    torch.manual_seed(0)
    moe = MoE(GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")).cuda().to(torch.bfloat16)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn_like(x)
    params = list(moe.parameters())
    fwd = lambda: moe(x)
    def fb():
        out = moe(x)
        torch.autograd.backward([out, moe.aux_loss], [dout, torch.ones_like(moe.aux_loss)])
    fl = T * K * n * d
    for rnd in range(int(sys.argv[2])):
        for mode in ((None, False) if rnd % 2 == 0 else (False, None)):
            sk.HOPPER_WGRAD = mode
            fb()
            tf = do_bench(fwd, warmup=5, rep=int(sys.argv[3]) // 3, grad_to_none=[x] + params)
            tfb = do_bench(fb, warmup=5, rep=int(sys.argv[3]), grad_to_none=[x] + params)
            label = "gluon" if mode is None else "triton"
            r = dict(shape=name, wgrad=label, round=rnd, fwd_ms=tf, fb_ms=tfb, bwd_ms=tfb - tf,
                     fb_tflops=18 * fl / tfb / 1e9, bwd_tflops=12 * fl / (tfb - tf) / 1e9)
            rows.append(r)
            print(f"{name:5s} round {rnd} wgrad {label:6s}: fwd {tf:.2f} ms, fwd+bwd {tfb:.2f} ms ({r['fb_tflops']:.0f} TFLOPS), "
                  f"bwd {tfb - tf:.2f} ms ({r['bwd_tflops']:.0f} TFLOPS)", flush=True)
    sk.HOPPER_WGRAD = None
    del moe, x, dout, params
    torch.cuda.empty_cache()
json.dump(rows, open(sys.argv[4], "w"), indent=1)
