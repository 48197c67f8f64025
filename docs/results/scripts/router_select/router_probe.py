"""The router's forward (sonic_kernels.router_fwd_impl: the logits GEMM, then _router_fwd_kernel's selection,
gates and loss terms, then the column sums) with the selection kernel as the tree before had it (K rounds
that each rewrote a (rows, E) rank tile; module OLD, a copy of that sonic_kernels.py) and as this tree has
it (K rounds of a row max whose values give the gates), the latter at several rows a program and warps.
Outputs checked against the old kernel's; timed at h200_moe's layer shape and the paper's four; the
logits GEMM alone beside them (a part). usage: router_probe.py OLD_DIR OUT.json"""
import sys, json, importlib.util
import torch
from triton.testing import do_bench
import sonic_kernels as sk
spec = importlib.util.spec_from_file_location("sk_old", sys.argv[1] + "/sonic_kernels.py")
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)

SHAPES = {"h200_moe": (16384, 1536, 128, 8), "1.4B": (40960, 768, 128, 8), "7B": (24576, 1536, 128, 8),
          "30B": (32768, 4096, 256, 16), "120B": (32768, 4096, 64, 4)}
VARIANTS = [("new 4096/E rows, 4 warps", 4096, 4), ("new 4096/E rows, 8 warps", 4096, 8),
            ("new 2048/E rows, 4 warps", 2048, 4), ("new 2048/E rows, 8 warps", 2048, 8),
            ("new 8192/E rows, 8 warps", 8192, 8)]
base_block_t = sk._router_block_t
out = []
for name, (T, d, E, K) in SHAPES.items():
    torch.manual_seed(0)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w = 0.02 * torch.randn(E, d, device="cuda")
    bias = torch.zeros(E, device="cuda")
    for rtype, code in sk.ROUTER_CODES.items():
        ref = old.router_fwd_impl(x, w, bias, K, code, True, "bf16x2")
        runs = [("old", lambda: old.router_fwd_impl(x, w, bias, K, code, True, "bf16x2"), None)]
        for label, elems, warps in VARIANTS:
            def fn(elems=elems, warps=warps):
                sk._router_block_t = lambda E_: max(1, min(64, elems // E_))
                sk.ROUTER_FWD_WARPS = warps
                try:
                    return sk.router_fwd_impl(x, w, bias, K, code, True, "bf16x2")
                finally:
                    sk._router_block_t, sk.ROUTER_FWD_WARPS = base_block_t, 4
            runs.append((label, fn, fn()))
        for label, fn, got in runs[1:]:
            # idx and counts must be equal; the gates may differ in the last bit (their sum is taken
            # over K values, where the old kernel summed a row of E with zeros in it)
            diff = [int(not torch.equal(a, b)) if not a.is_floating_point() else
                    ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item() for a, b in zip(got, ref)]
            print(f"{name} {rtype} {label}: against the old kernel (idx, gates, lse, ssum, psum, counts): "
                  + " ".join(f"{v:.1e}" for v in diff), flush=True)
        if rtype != "softmax_topk":
            continue   # timed for the default router only
        for rnd in range(2):
            for label, fn, _ in runs:
                ms = do_bench(fn, warmup=10, rep=100)
                print(f"{name} {rtype} {label} round {rnd}: {ms * 1e3:7.1f} us", flush=True)
                out.append(dict(shape=name, router=rtype, variant=label, round=rnd, us=ms * 1e3))
        ms = do_bench(lambda: sk.logit_parts(x, w, "bf16x2"), warmup=10, rep=100)
        print(f"{name} logits GEMM alone (part): {ms * 1e3:7.1f} us", flush=True)
        out.append(dict(shape=name, variant="logits GEMM (part)", us=ms * 1e3))
        # token rounding's top-K + softmax of given fp32 logits (_topk_softmax_kernel), old and new
        logits = sk.router_logits(x, w, "bf16x2")
        a, b = old.topk_softmax_impl(logits, K), sk.topk_softmax_impl(logits, K)
        print(f"{name} topk_softmax: idx equal {torch.equal(a[0], b[0])}, gates apart "
              f"{((a[1] - b[1]).norm() / b[1].norm()).item():.1e}", flush=True)
        for rnd in range(2):
            for label, mod in (("old", old), ("new", sk)):
                ms = do_bench(lambda: mod.topk_softmax_impl(logits, K), warmup=10, rep=100)
                print(f"{name} topk_softmax {label} round {rnd}: {ms * 1e3:7.1f} us", flush=True)
                out.append(dict(shape=name, variant=f"topk_softmax {label}", round=rnd, us=ms * 1e3))
    del x
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[2], "w"), indent=1)
