"""Whole MoE module (router + balancing loss + experts), bf16, fwd/bwd TFLOPS, MiB alive after forward,
host enqueue time. Imports MoE from moe.py (new layout) or model.py (baseline)."""
import sys, time, json, statistics
import torch
from triton.testing import do_bench
try:
    from moe import MoE
except ImportError:
    from model import MoE
from model import GPTConfig
label = sys.argv[1]
import os, sonic_kernels
sonic_kernels.TMA = {"0": False}.get(os.environ.get("SK_TMA", ""))  # SK_TMA=0: pointer loads only; else None, the default
sonic_kernels.HOPPER_WGRAD = {"0": False}.get(os.environ.get("SK_HOPPER_WGRAD", ""))  # 0: the Triton weight gradients; unset: the Hopper kernel where it runs (None)
sonic_kernels.HOPPER_UP = {"0": False}.get(os.environ.get("SK_HOPPER_UP", ""))  # 0: the Triton up-projection; unset: the Hopper kernel where it runs (None)
sonic_kernels.DB_WIDE = {"0": False, "1": True}.get(os.environ.get("SK_DB_WIDE", ""))  # dA''s 256-column items: 0 off, 1 forced, unset by shape (None)
sonic_kernels.WG_WIDE = {"0": False}.get(os.environ.get("SK_WG_WIDE", ""))  # the weight gradients' 192 x 256 tiles: 0 off; unset: on (None)
shapes = [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8),
          ("30B", 32768, 4096, 256, 256, 16), ("120B", 32768, 4096, 2048, 64, 4)]
if len(sys.argv) > 2 and sys.argv[2] != "all":
    shapes = [s for s in shapes if s[0] in sys.argv[2].split(",")]
rows = []
for name, T, d, n, E, K in shapes:
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
    moe = MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn_like(x)
    params = list(moe.parameters())
    def fwd():
        return moe(x)
    def fb():
        out = moe(x)
        torch.autograd.backward([out, moe.aux_loss], [dout, torch.ones_like(moe.aux_loss)])
    fb(); torch.cuda.synchronize()
    x.grad = None
    for p in params: p.grad = None
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = moe(x); aux = moe.aux_loss
    torch.cuda.synchronize()
    alive = (torch.cuda.memory_allocated() - base) / 2**20
    del out, aux
    moe.aux_loss = None
    def bench(fn):
        # do_bench times rep / (one call) calls, a single one where a call outlasts rep (120B's fwd+bwd,
        # ~35 ms, against rep = 60): stretch rep to time at least 10
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); one = (time.perf_counter() - t0) * 1e3
        return do_bench(fn, warmup=10, rep=max(60, 10 * one), grad_to_none=[x] + params)
    tf, tfb = bench(fwd), bench(fb)
    # host: enqueue one fwd+bwd without waiting, after a sync; the GPU is idle at the start
    hs = []
    for _ in range(15):
        torch.cuda.synchronize(); t0 = time.perf_counter(); fb(); hs.append((time.perf_counter() - t0) * 1e3)
        x.grad = None
        for p in params: p.grad = None
    torch.cuda.synchronize()
    host = statistics.median(hs)
    tb = tfb - tf
    fl = T * K * n * d
    r = dict(label=label, shape=name, T=T, d=d, n=n, E=E, K=K, fwd_ms=tf, bwd_ms=tb, fb_ms=tfb,
             fwd_tflops=6 * fl / tf / 1e9, bwd_tflops=12 * fl / tb / 1e9, fb_tflops=18 * fl / tfb / 1e9,
             mib_after_fwd=alive, contract_mib=(4 * T * K * n + 2 * T * d) / 2**20, host_ms=host)
    rows.append(r)
    print(f"{label:5s} {name:5s} {n}/{E}/{K}: fwd {r['fwd_tflops']:.0f} bwd {r['bwd_tflops']:.0f} f+b {r['fb_tflops']:.0f} TFLOPS"
          f" | {tf:.2f}/{tb:.2f}/{tfb:.2f} ms | MiB {alive:.0f} (h+out {r['contract_mib']:.0f}) | host {host:.2f} ms", flush=True)
    del moe, x, dout, params
    torch.cuda.empty_cache()
json.dump(rows, open(sys.argv[3] if len(sys.argv) > 3 else f"/tmp/{label}.json", "w"), indent=1)
