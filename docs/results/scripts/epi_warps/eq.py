"""dA''s Hopper kernel with its epilogue on 4 and on 8 warps, at each config (128- and 256-column items): outputs
compared bit for bit, and each against float64 by relative error, at two shapes. usage: eq.py"""
import torch
import sonic_kernels as sk

VARIANTS = {"wide": dict(EPI_WARPS=8, EPILOGUE_REGS=48, PRODUCER_REGS=24),
            "narrow": dict(EPI_WARPS=8, EPILOGUE_REGS=72, PRODUCER_REGS=40)}
for T, d, n, E, K in [(4096, 768, 256, 128, 8), (2048, 1536, 512, 64, 4)]:
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                            torch.softmax(top, -1).flatten(), T, E)
    R = T * K
    dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
    # float64 reference in grouped order
    gi, s = r.gather_idx.long(), r.row_score.double()
    da = torch.zeros(R, n, dtype=torch.float64, device="cuda")
    off = r.offsets.tolist()
    for e in range(E):
        a, b = off[e], off[e + 1]
        da[a:b] = dO[gi[a:b]].double() @ w2[e].double().T
    gt, up = h[:, :n].double(), h[:, n:].double()
    sig = torch.sigmoid(gt)
    silu = gt * sig
    ref = dict(dH=torch.cat([da * s[:, None] * up * (sig + silu * (1 - sig)), da * s[:, None] * silu], 1),
               Ap=silu * up * s[:, None], dS=(da * silu * up).sum(1))
    for wide, over in VARIANTS.items():
        sk.DB_WIDE = wide == "wide"
        outs = []
        for o in (None, over):
            saved = sk.DB_CONFIG, sk.DB_WIDE_CONFIG
            if o:
                sk.DB_CONFIG, sk.DB_WIDE_CONFIG = {**saved[0], **o}, {**saved[1], **o}
            dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
            part = sk._down_bwd_hopper(dO, w2, h, r, dH, Ap)
            sk.DB_CONFIG, sk.DB_WIDE_CONFIG = saved
            outs.append(dict(dH=dH, Ap=Ap, dS=part.sum(0)))
        torch.cuda.synchronize()
        rel = {k: f"{((outs[1][k].double() - ref[k]).norm() / ref[k].norm()).item():.1e}" for k in ref}
        same = {k: torch.equal(outs[0][k], outs[1][k]) for k in ref}
        print(f"T={T} d={d} n={n} {wide}: 8 warps bit-identical to 4: {same}; rel. error vs float64: {rel}", flush=True)
