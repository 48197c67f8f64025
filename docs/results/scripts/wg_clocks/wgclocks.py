"""The SM clock and power beside the weight gradients (the Hopper kernel, a part) with bf16 and fp32 gradients, fp32
with and without their sums of squares, and cuBLAS's bmm (bf16) of the same size: each timed ~2 s, alternating, three
rounds, while nvidia-smi samples the clock and power every 50 ms. Says whether fp32's extra time is more cycles or a
lower clock. usage: wgclocks.py OUT.json"""
import json, subprocess, sys, time
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SHAPES = {"7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16)}
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                        "-lms", "50"], stdout=subprocess.PIPE, text=True)
spans = []
for shape, (T, d, n, E, K) in SHAPES.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    order = sk.expert_order(r.offsets)
    a_ = torch.randn(E, d, R // E, device="cuda", dtype=torch.bfloat16)   # dW1 = X^T dH as E dense blocks
    b_ = torch.randn(E, R // E, 2 * n, device="cuda", dtype=torch.bfloat16)
    variants = {"bf16": lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.bfloat16, order=order),
                "fp32": lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32, order=order),
                "fp32 sq": lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32,
                                            order=order, squares=True),
                "cuBLAS": lambda: torch.bmm(a_, b_)}
    for rnd in range(3):
        for name, f in variants.items():
            f(); torch.cuda.synchronize()
            t0 = time.time()
            ms = do_bench(f, warmup=25, rep=2000)
            spans.append((shape, name, rnd, t0, time.time(), ms))
    del x, dH, a_, b_, r
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
for shape, name, rnd, t0, t1, ms in spans:
    inside = sorted(s for s in samples if t0 + 0.3 <= s[0] <= t1)   # after the warm-up
    clk = sorted(s[1] for s in inside)
    pw = sorted(s[2] for s in inside)
    med = lambda v: v[len(v) // 2] if v else float("nan")
    cycles = ms * 1e-3 * med(clk) * 1e6
    print(f"{shape:4s} dW1 {name:8s} round {rnd}: {ms * 1e3:7.1f} us | SM clock median {med(clk):6.0f} MHz "
          f"(min {clk[0] if clk else 0:.0f}) | power median {med(pw):5.0f} W | {cycles / 1e6:6.3f} M cycles | "
          f"{len(inside)} samples", flush=True)
    out.append(dict(shape=shape, variant=name, round=rnd, us=ms * 1e3, clock_mhz=med(clk), power_w=med(pw),
                    samples=len(inside)))
json.dump(out, open(sys.argv[1], "w"), indent=1)
