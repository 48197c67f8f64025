"""The SM clock and power beside the up-projection, dA' and cuBLAS on each one's dense GEMM, at the README's four
shapes (the kernels as in the tree, Triton 3.6): which of the per-GEMM ratios are cycles and which are clock.
Alternating, each timed ~1 s while nvidia-smi samples every 50 ms. usage: clocks_all.py OUT.json"""
import json, subprocess, sys, time
import torch
from triton.testing import do_bench
import sonic_kernels as sk
from halfw import routing

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                        "-lms", "50"], stdout=subprocess.PIPE, text=True)
spans = []
for shape, (T, d, n, E, K) in SHAPES.items():
    r = routing(T, E, K)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    a, Ap, dH = torch.empty(R, n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16), torch.empty_like(h)
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B1 = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    B2 = torch.randn(d, n, device="cuda", dtype=torch.bfloat16)
    jobs = (("up", 2 * R * 2 * n * d, lambda: sk._up_hopper(x, w1, r, h, a)), ("up cuBLAS", 2 * R * 2 * n * d, lambda: torch.mm(A_, B1)),
            ("dA'", 2 * R * n * d, lambda: sk._down_bwd_hopper(x, w2, h, r, dH, Ap)), ("dA' cuBLAS", 2 * R * n * d, lambda: torch.mm(A_, B2)))
    for rnd in range(2):
        for name, flops, f in jobs:
            f(); torch.cuda.synchronize()
            t0 = time.time()
            ms = do_bench(f, warmup=25, rep=1000)
            spans.append((shape, name, rnd, t0, time.time(), ms, flops))
    del r, x, w1, w2, h, a, Ap, dH, A_, B1, B2
    torch.cuda.empty_cache()
time.sleep(0.2)
smi.terminate()
samples = []
for line in smi.stdout.read().splitlines():
    try:
        ts, clk, pw = [v.strip() for v in line.split(",")]
        t = time.mktime(time.strptime(ts.split(".")[0], "%Y/%m/%d %H:%M:%S")) + float("0." + ts.split(".")[1])
        samples.append((t, float(clk), float(pw)))
    except ValueError:
        pass
out = []
med = lambda v: sorted(v)[len(v) // 2] if v else float("nan")
for shape, name, rnd, t0, t1, ms, flops in spans:
    inside = [s for s in samples if t0 + 0.3 <= s[0] <= t1]
    clk, pw = med([s[1] for s in inside]), med([s[2] for s in inside])
    print(f"{shape:5s} {name:10s} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS | SM clock {clk:5.0f} MHz | "
          f"power {pw:4.0f} W | {ms * 1e-3 * clk * 1e6 / 1e6:6.2f} M cycles | {len(inside)} samples", flush=True)
    out.append(dict(shape=shape, kernel=name, round=rnd, us=ms * 1e3, clock_mhz=clk, power_w=pw, samples=len(inside)))
json.dump(out, open(sys.argv[1], "w"), indent=1)
