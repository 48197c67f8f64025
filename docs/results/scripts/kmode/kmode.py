"""Why bench.py's kernels mode puts the up-projection at 0.94-0.96 of cuBLAS at 1.4B and 7B when the two timed back to
back give 0.82-0.86: the expert kernels (parts) and cuBLAS on dense GEMMs of their sizes, timed four ways at each shape.
  bench:       as bench.py --mode=kernels: our kernels' profiled times inside 5 layer steps (after 5 untimed), cuBLAS
               by do_bench (L2 flushed before each call, 25 ms of warm-up, 100 ms of runs)
  interleaved: each of 5 profiled iterations runs a layer step, then each dense GEMM, all times from one profiler
  long:        as interleaved, for about 1.5 s of iterations (the H200 at its power cap)
  isolated:    our kernel alone on the layer's saved operands, and cuBLAS, each by do_bench
with nvidia-smi sampling the SM clock and power every 50 ms, its median printed for each phase.
usage: kmode.py OUT.json [LABEL ...]"""
import json, subprocess, sys, time
import torch
from torch.profiler import profile, ProfilerActivity
from triton.testing import do_bench
import moe
import sonic_kernels as sk
from model import GPTConfig

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
OURS = {"_up_hopper_kernel": "up", "_down_bwd_hopper_kernel": "dA'"}


def layer_step(T, d, n, E, K):
    torch.manual_seed(1337)   # as bench.layer_module
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
    layer = moe.MoE(cfg).to(device="cuda", dtype=torch.bfloat16).train()
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    leaves = [x, *layer.parameters()]

    def step():
        for t in leaves:
            t.grad = None
        out = layer(x)
        torch.autograd.backward([out, layer.aux_loss], [dout, torch.ones_like(layer.aux_loss)])
    return layer, x, step


def dense(T, d, n, K):
    R = T * K   # (M, N, K) as bench.expert_gemms: up (R, 2n, d), dA' (R, n, d)
    mk = lambda M, N, Kd: (torch.randn(M, Kd, device="cuda", dtype=torch.bfloat16),
                           torch.randn(Kd, N, device="cuda", dtype=torch.bfloat16))
    return {"up": mk(R, 2 * n, d), "dA'": mk(R, n, d)}


def profiled(step, gemms, iters):
    """Our kernels' mean us from the profiler over iters steps; with gemms, each dense GEMM run after every step and
    its us taken by CUDA events around it (median)."""
    ev = {k: [] for k in gemms}
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            step()
            for k, (a, b) in gemms.items():
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record(); torch.mm(a, b); e.record()
                ev[k].append((s, e))
        torch.cuda.synchronize()
    tot = {}
    for e in prof.events():
        if e.name in OURS:
            t = tot.setdefault(OURS[e.name], [0, 0.0])
            t[0] += 1
            t[1] += e.time_range.elapsed_us()
    out = {k: us / c for k, (c, us) in tot.items()}
    for k, pairs in ev.items():
        v = sorted(s.elapsed_time(e) * 1e3 for s, e in pairs)
        out["cuBLAS " + k] = v[len(v) // 2]
    return out


def main():
    names = sys.argv[2:] or list(SHAPES)
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", "50"], stdout=subprocess.PIPE, text=True)
    spans, res = [], []
    for name in names:
        T, d, n, E, K = SHAPES[name]
        layer, x, step = layer_step(T, d, n, E, K)
        gemms = dense(T, d, n, K)
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        st = time.perf_counter(); step(); torch.cuda.synchronize(); step_ms = (time.perf_counter() - st) * 1e3
        for rnd in range(2):
            row = dict(shape=name, round=rnd)
            t0 = time.time()
            for _ in range(5):   # bench: 5 untimed, then 5 profiled steps
                step()
            b = profiled(step, {}, 5)
            spans.append((name, rnd, "bench ours", t0, time.time()))
            t0 = time.time()
            for k, (a, w) in gemms.items():
                b["cuBLAS " + k] = do_bench(lambda: torch.mm(a, w), warmup=25, rep=100, return_mode="median") * 1e3
            spans.append((name, rnd, "bench cuBLAS", t0, time.time()))
            row["bench"] = b
            t0 = time.time()
            row["interleaved"] = profiled(step, gemms, 5)
            spans.append((name, rnd, "interleaved", t0, time.time()))
            t0 = time.time()
            iters = max(5, int(1500 / (step_ms + 5)))
            row["long"] = profiled(step, gemms, iters)
            row["long_iters"] = iters
            spans.append((name, rnd, "long", t0, time.time()))
            res.append(row)
            for k in ("bench", "interleaved", "long"):
                v = row[k]
                print(f"{name:5s} r{rnd} {k:12s} " + " | ".join(
                    f"{g}: ours {v[g]:8.1f} us, cuBLAS {v['cuBLAS ' + g]:8.1f} us, ratio {v['cuBLAS ' + g] / v[g]:.3f}"
                    for g in ("up", "dA'")), flush=True)
        del layer, x
        torch.cuda.empty_cache()
        # isolated: each kernel alone on a random top-K routing of the shape, beside cuBLAS, by do_bench
        g = torch.Generator(device="cuda").manual_seed(0)
        top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
        r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                                torch.softmax(top, -1).flatten(), T, E)
        R = T * K
        xs = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
        h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        sk._up_hopper(xs, w1, r, h, a)
        dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        dH, Ap = torch.empty_like(h), torch.empty_like(a)
        fns = {"up": lambda: sk._up_hopper(xs, w1, r, h, a), "dA'": lambda: sk._down_bwd_hopper(dO, w2, h, r, dH, Ap)}
        for rnd in range(2):
            t0 = time.time()
            v = {}
            for k in ("up", "dA'"):
                v[k] = do_bench(fns[k], warmup=25, rep=100, return_mode="median") * 1e3
                ga, gb = gemms[k]
                v["cuBLAS " + k] = do_bench(lambda: torch.mm(ga, gb), warmup=25, rep=100, return_mode="median") * 1e3
            spans.append((name, rnd, "isolated", t0, time.time()))
            res.append(dict(shape=name, round=rnd, isolated=v))
            print(f"{name:5s} r{rnd} {'isolated':12s} " + " | ".join(
                f"{g}: ours {v[g]:8.1f} us, cuBLAS {v['cuBLAS ' + g]:8.1f} us, ratio {v['cuBLAS ' + g] / v[g]:.3f}"
                for g in ("up", "dA'")), flush=True)
        del xs, w1, w2, h, a, dO, dH, Ap, gemms, r
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
    med = lambda v: v[len(v) // 2] if v else float("nan")
    clocks = []
    for name, rnd, what, t0, t1 in spans:
        inside = [s for s in samples if t0 <= s[0] <= t1]
        c, p = sorted(s[1] for s in inside), sorted(s[2] for s in inside)
        clocks.append(dict(shape=name, round=rnd, phase=what, clock_mhz=med(c), power_w=med(p), samples=len(inside),
                           seconds=t1 - t0))
        print(f"{name:5s} r{rnd} {what:13s} {t1 - t0:6.2f} s | clock {med(c):5.0f} MHz | power {med(p):4.0f} W | "
              f"{len(inside)} samples", flush=True)
    json.dump(dict(results=res, clocks=clocks), open(sys.argv[1], "w"), indent=1)


if __name__ == "__main__":
    main()
