"""The SM clock and power beside each timing of halfw.py's proxy at 120B 2048/64/4: the up-projection with whole and
half weight bytes, and cuBLAS on a dense GEMM of its size, alternating, each timed for ~2 s while nvidia-smi samples
the clock and power every 50 ms. Says how much of the half-W gain is fewer cycles and how much a higher clock.
usage: clocks.py OUT.json"""
import json, subprocess, sys, time
import torch
from triton.testing import do_bench
import halfw   # its copy of sonic_kernels (halfw.hw) and routing()
sk, hw = halfw.sk, halfw.hw

T, d, n, E, K = 32768, 4096, 2048, 64, 4
r = halfw.routing(T, E, K)
R = T * K
x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
flops = 2 * R * 2 * n * d
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                        "-lms", "50"], stdout=subprocess.PIPE, text=True)
spans = []
for rnd in range(3):
    for name, f in (("whole W", lambda: sk._up_hopper(x, w1, r, h, a)), ("half W", lambda: hw._up_hopper(x, w1, r, h, a)),
                    ("cuBLAS", lambda: torch.mm(A_, B_))):
        f(); torch.cuda.synchronize()
        t0 = time.time()
        ms = do_bench(f, warmup=25, rep=2000)
        spans.append((name, rnd, t0, time.time(), ms))
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
for name, rnd, t0, t1, ms in spans:
    inside = sorted(s for s in samples if t0 + 0.3 <= s[0] <= t1)   # after the warm-up
    clk = sorted(s[1] for s in inside)
    pw = sorted(s[2] for s in inside)
    med = lambda v: v[len(v) // 2] if v else float("nan")
    cycles = ms * 1e-3 * med(clk) * 1e6
    print(f"{name:8s} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS | SM clock median {med(clk):6.0f} MHz "
          f"(min {clk[0] if clk else 0:.0f}) | power median {med(pw):5.0f} W | {cycles / 1e6:6.2f} M cycles | {len(inside)} samples", flush=True)
    out.append(dict(variant=name, round=rnd, us=ms * 1e3, clock_mhz=med(clk), power_w=med(pw), samples=len(inside)))
json.dump(out, open(sys.argv[1], "w"), indent=1)
