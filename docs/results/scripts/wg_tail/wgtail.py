"""Whether the weight gradients (the Hopper kernel, a part: dW2 and dW1 timed apart) lose their last round's idle SMs:
each timed with its persistent grid capped at P programs (P = the SM count, and fewer), so that a time that follows
ceil(tiles / P) rounds says the tiles take one time each and the last round's empty SMs cost what its share says;
cuBLAS's bmm over E equal row blocks of the same sizes beside them. bf16 gradients, as bench.py's layer runs them.
usage: wgtail.py OUT.json [SHAPE ...]"""
import json, math, sys
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}
n_sm = torch.cuda.get_device_properties(0).multi_processor_count
orig = sk._n_programs
out = []
for name in sys.argv[2:] or ["1.4B", "7B", "30B"]:
    T, d, n, E, K = SHAPES[name]
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
    runs = {"dW2": (lambda: sk.wgrad(Ap, dO, r, gather_a=False, gather_b=True, order=order), (n, d)),
            "dW1": (lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False, order=order), (d, 2 * n))}
    for kname, (f, (M, N)) in runs.items():
        c = torch.empty(E, M, N, device="cuda", dtype=torch.bfloat16)
        cfg, _ = sk._wg_config(c)
        blk, gw = cfg["BLOCK"], cfg["BLOCK"] + cfg["G2"]
        tiles = E * (math.ceil(M / gw) * math.ceil(N / (2 * blk)) if kname == "dW1" else math.ceil(M / (2 * blk)) * math.ceil(N / gw))
        flops = 2 * M * N * R
        a_ = torch.randn(E, M, R // E, device="cuda", dtype=torch.bfloat16)
        b_ = torch.randn(E, R // E, N, device="cuda", dtype=torch.bfloat16)
        cub = min(do_bench(lambda: torch.bmm(a_, b_), warmup=10, rep=200) for _ in range(2)) * 1e3
        ref = f()
        res = []
        for P in (n_sm, n_sm - 4, n_sm - 12, n_sm - 22, n_sm // 2):
            sk._n_programs = lambda device, work, P=P: max(1, min(P, work))
            got = f()
            same = torch.equal(got, ref)
            us = [do_bench(f, warmup=10, rep=200) * 1e3 for _ in range(3)]
            res.append(dict(P=P, rounds=math.ceil(tiles / P), us=us, bit_identical=same))
            print(f"{name} {kname} tiles {tiles:5d} P {P:3d} rounds {math.ceil(tiles / P):3d}: us "
                  + " ".join(f"{u:7.1f}" for u in us) + f"  same as P={n_sm}: {same}", flush=True)
        sk._n_programs = orig
        best = min(res[0]["us"])
        per_round = best / res[0]["rounds"]
        ideal = per_round * tiles / n_sm
        print(f"{name} {kname}: cuBLAS bmm {cub:7.1f} us; ours {best:7.1f} ({cub / best:.2f} of cuBLAS); with no idle SMs in "
              f"the last round (one round {per_round:.1f} us x {tiles / n_sm:.2f}) {ideal:7.1f} ({cub / ideal:.2f})", flush=True)
        out.append(dict(shape=name, kernel=kname, tiles=tiles, runs=res, cublas_us=cub, flops=flops))
        del a_, b_, c
    del r, x, dO, Ap, dH
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
