"""What fewer operand bytes a step could give the weight gradients (the Hopper kernel, a part), by proxy: copies of
sonic_kernels whose producer loads less of each ring stage, the barriers expecting those bytes, the MMAs still
reading every buffer (so the outputs are wrong and only the time is read):
  halft  the TMA operand's second 128-column half left out (dW1's dH, dW2's A'): the L2 traffic a CTA would pull if
         a cluster peer sharing that operand fetched the other half for both (a multicast, 6.4 KB a MFLOP);
  nog2   the wide tiles' second gathered block (64 columns) left out: 7.6 KB a MFLOP, as cuBLAS's 2-CTA tiles.
Each variant and cuBLAS's bmm of the same size timed ~1 s, alternating, three rounds, while nvidia-smi samples the
SM clock and power every 50 ms, so that time splits into cycles and clock. usage: wghalf.py OUT.json"""
import importlib.util, json, os, subprocess, sys, tempfile, time
import torch
from triton.testing import do_bench
import sonic_kernels as sk

BASE = open(sk.__file__).read()
T_LOADS = ("                mbarrier.expect(ready_t.index(s), 2 * BLOCK_K * BLOCK * t_smem.type.element_ty.primitive_bitwidth // 8)\n"
           "                _tma_load(desc, [r0, t_col], ready_t.index(s), t_smem.index(2 * s))\n"
           "                _tma_load(desc, [r0, t_col + BLOCK], ready_t.index(s), t_smem.index(2 * s + 1))\n")
G2_LOAD = ("                    _cp_async(g2_smem.index(s), G + idx[:, None] * stride_gr + cols2[None, :],\n"
           "                              mask=mrow[:, None] & (cols2 < G_COLS)[None, :])\n")
PATCHES = {"head": [],
           "halft": [(T_LOADS, T_LOADS.replace("2 * BLOCK_K", "BLOCK_K").rsplit("                _tma_load", 1)[0])],
           "nog2": [(G2_LOAD, "                    pass\n")]}


def load(i, name, swaps):
    src = BASE
    for old, new in swaps:
        assert src.count(old) == 1, (name, old)
        src = src.replace(old, new)
    src = src.replace('"sonic::', f'"sonic{i}::').replace("torch.ops.sonic", f"torch.ops.sonic{i}")
    p = os.path.join(tempfile.mkdtemp(), f"sk_{name}.py")
    open(p, "w").write(src)
    spec = importlib.util.spec_from_file_location(f"sk_{name}", p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


MODS = {name: load(i, name, sw) for i, (name, sw) in enumerate(PATCHES.items())}
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
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    Ap = torch.randn(R, n, device="cuda", dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    order = sk.expert_order(r.offsets)
    for kname, (a, b, ga, (M, N)) in {"dW2": (Ap, dO, False, (n, d)), "dW1": (x, dH, True, (d, 2 * n))}.items():
        a_ = torch.randn(E, M, R // E, device="cuda", dtype=torch.bfloat16)
        b_ = torch.randn(E, R // E, N, device="cuda", dtype=torch.bfloat16)
        for dt, sq in ((torch.bfloat16, False), (torch.float32, True)):
            fs = {v: (lambda m=m: m.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=dt, order=order,
                                          squares=sq)) for v, m in MODS.items()}
            if dt == torch.bfloat16:
                fs["cuBLAS"] = lambda: torch.bmm(a_, b_)
            for rnd in range(3):
                for v, f in fs.items():
                    f(); torch.cuda.synchronize()
                    t0 = time.time()
                    ms = do_bench(f, warmup=25, rep=1000)
                    spans.append((f"{shape} {kname} {str(dt)[6:]}{' sq' if sq else ''}", v, rnd, t0, time.time(), ms))
        del a_, b_
    del x, dO, Ap, dH, r
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
for tag, name, rnd, t0, t1, ms in spans:
    inside = sorted(s for s in samples if t0 + 0.3 <= s[0] <= t1)   # after the warm-up
    clk = sorted(s[1] for s in inside)
    pw = sorted(s[2] for s in inside)
    med = lambda v: v[len(v) // 2] if v else float("nan")
    cycles = ms * 1e-3 * med(clk) * 1e6
    print(f"{tag:16s} {name:7s} round {rnd}: {ms * 1e3:7.1f} us | SM clock median {med(clk):6.0f} MHz | power median "
          f"{med(pw):5.0f} W | {cycles / 1e6:6.3f} M cycles | {len(inside)} samples", flush=True)
    out.append(dict(case=tag, variant=name, round=rnd, us=ms * 1e3, clock_mhz=med(clk), power_w=med(pw),
                    samples=len(inside)))
json.dump(out, open(sys.argv[1], "w"), indent=1)
