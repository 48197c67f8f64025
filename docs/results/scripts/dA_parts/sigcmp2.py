"""down_bwd (dA' and its epilogue): before (.gpu/old: HEAD), with the approximate sigmoid (.gpu/mid) and with
the scores loaded a chunk ahead too (the tree), at the four shapes: median of 20 (CUDA events), three
alternated rounds, bit-identity against HEAD."""
import importlib.util, sys, torch
import sonic_kernels as sk
spec = importlib.util.spec_from_file_location("sk_old", ".gpu/old/sonic_kernels.py")
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
spec = importlib.util.spec_from_file_location("sk_mid", ".gpu/mid/sonic_kernels.py")
mid = importlib.util.module_from_spec(spec); spec.loader.exec_module(mid)

def timed(fn, reps=20):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record(); fn(); e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1))
    ts.sort()
    return ts[len(ts) // 2]

REGS = {"new": {}}
base = dict(sk.DB_CONFIG)
SHAPES = {"1.4B 256/128/8": (40960, 768, 256, 128, 8), "7B 256/128/8": (24576, 1536, 256, 128, 8),
          "30B 256/256/16": (32768, 4096, 256, 256, 16), "120B 2048/64/4": (32768, 4096, 2048, 64, 4)}
torch.manual_seed(0)
for name, (T, d, n, E, K) in SHAPES.items():
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = torch.randn(E, d, 2 * n, device="cuda", dtype=torch.bfloat16) / d ** 0.5
    w2 = torch.randn(E, n, d, device="cuda", dtype=torch.bfloat16) / n ** 0.5
    dout = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    probs = torch.softmax(torch.randn(T, E, device="cuda"), -1)
    gates, idx = probs.topk(K, -1)
    pair_tok = torch.arange(T, device="cuda").repeat_interleave(K)
    r = sk.routing_metadata(pair_tok, idx.flatten(), gates.flatten(), T, E)
    h, _ = sk.up_swiglu(x, w1, r)
    flops = 2 * h.shape[0] * n * d
    ref = old.down_bwd(dout, w2, h, r)
    res = {"old": [], "mid": []}
    for k in REGS:
        res[k] = []
    same = {}
    same["mid"] = all(torch.equal(a, b) for a, b in zip(mid.down_bwd(dout, w2, h, r), ref))
    for rnd in range(3):
        res["old"].append(timed(lambda: old.down_bwd(dout, w2, h, r)))
        res["mid"].append(timed(lambda: mid.down_bwd(dout, w2, h, r)))
        for k, regs in REGS.items():
            sk.DB_CONFIG.clear(); sk.DB_CONFIG.update(base, **regs)
            got = sk.down_bwd(dout, w2, h, r)
            same[k] = all(torch.equal(a, b) for a, b in zip(got, ref))
            res[k].append(timed(lambda: sk.down_bwd(dout, w2, h, r)))
    line = f"{name}:"
    for k, ts in res.items():
        line += f" {k} " + "/".join(f"{t*1e3:.0f}" for t in ts) + f" us ({flops/min(ts)/1e9:.0f} TFLOPS best)"
        if k in same:
            line += f" identical {same[k]};"
    print(line, flush=True)
    sk.DB_CONFIG.clear(); sk.DB_CONFIG.update(base)
    del x, w1, w2, dout, h, ref, r
    torch.cuda.empty_cache()
