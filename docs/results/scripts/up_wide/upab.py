"""The up-projection (the Hopper kernel, a part) before and after a change to sonic_kernels: the module at BEFORE (a
path) against the tree's, h and a compared bit for bit, timed in alternating rounds beside cuBLAS on a dense GEMM of
its size, while nvidia-smi samples the SM clock and power.
usage: upab.py BEFORE OUT.json [SHAPE ...]"""
import importlib.util, json, os, subprocess, sys, tempfile, time
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sys.argv[1]).read()
path = os.path.join(tempfile.mkdtemp(), "sk_before.py")
open(path, "w").write(src.replace('"sonic::', '"sonicbefore::').replace("torch.ops.sonic", "torch.ops.sonicbefore"))
spec = importlib.util.spec_from_file_location("sk_before", path)
before = importlib.util.module_from_spec(spec)
spec.loader.exec_module(before)

SHAPES = {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
          "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4), "odd": (3001, 512, 160, 6, 3)}
names = sys.argv[3:] or list(SHAPES)
res = {"equal": {}, "timing": []}
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                        "-lms", "50"], stdout=subprocess.PIPE, text=True)
spans = []
for name in names:
    T, d, n, E, K = SHAPES[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    outs = {}
    for v, m in (("before", before), ("after", sk)):
        h = torch.full((R, 2 * n), float("nan"), device="cuda", dtype=torch.bfloat16)
        a = torch.full((R, n), float("nan"), device="cuda", dtype=torch.bfloat16)
        m._up_hopper(x, w1, r, h, a)
        outs[v] = (h, a)
    eq = all(torch.equal(p, q) for p, q in zip(outs["before"], outs["after"]))
    res["equal"][name] = eq
    print(f"{name}: h and a bit for bit the same before and after: {eq}", flush=True)
    if name == "odd":
        continue
    h, a = outs["after"]
    A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
    B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
    flops = 2 * R * 2 * n * d
    rep = 1500 if d == 4096 else 600
    for rnd in range(3):
        for v, f in (("before", lambda: before._up_hopper(x, w1, r, h, a)), ("after", lambda: sk._up_hopper(x, w1, r, h, a)),
                     ("cuBLAS", lambda: torch.mm(A_, B_))):
            f(); torch.cuda.synchronize()
            t0 = time.time()
            ms = do_bench(f, warmup=25, rep=rep)
            spans.append((name, v, rnd, t0, time.time(), ms, flops))
            print(f"{name} {v} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
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
med = lambda v: v[len(v) // 2] if v else float("nan")
for name, v, rnd, t0, t1, ms, flops in spans:
    inside = [s for s in samples if t0 + 0.3 <= s[0] <= t1]
    clk, pw = sorted(s[1] for s in inside), sorted(s[2] for s in inside)
    print(f"{name:8s} {v:7s} round {rnd}: {ms * 1e3:8.1f} us {flops / ms / 1e9:5.0f} TFLOPS | clock {med(clk):5.0f} MHz "
          f"| power {med(pw):4.0f} W | {ms * 1e-3 * med(clk):6.3f} M cycles | {len(inside)} samples", flush=True)
    res["timing"].append(dict(shape=name, variant=v, round=rnd, us=ms * 1e3, clock_mhz=med(clk), power_w=med(pw)))
json.dump(res, open(sys.argv[2], "w"), indent=1)
