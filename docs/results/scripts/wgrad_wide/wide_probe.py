"""The Hopper weight gradients with wide tiles (192 x 256, WG_WIDE_CONFIG) against the narrow ones
(128 x 256): time (do_bench, variants alternated over rounds), equality of the outputs, and cuBLAS's
bmm on dense operands of the same sizes in the same run."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import sonic_kernels as sk
from triton.testing import do_bench

shapes = [('1.4B 256/128/8', 40960, 768, 256, 128, 8), ('7B 256/128/8', 24576, 1536, 256, 128, 8),
          ('h200_moe', 16384, 1536, 256, 128, 8), ('30B 256/256/16', 32768, 4096, 256, 256, 16),
          ('120B 2048/64/4', 32768, 4096, 2048, 64, 4)]
only = os.environ.get('ONLY')
dev = 'cuda'
def variant(wide, tma):
    sk.WG_WIDE = None if wide else False
    sk.WG_TMA_STORE = None if tma else False
for label, T, d, n, E, K in shapes:
    if only and only not in label:
        continue
    torch.manual_seed(0)
    idx = torch.randn(T, E, device=dev).topk(K, dim=1).indices
    r = sk.routing_metadata(None, idx.flatten(), torch.rand(T * K, device=dev), T, E)
    order = sk.expert_order(r.offsets)
    R = T * K
    x = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    dH = torch.randn(R, 2 * n, device=dev, dtype=torch.bfloat16)
    Ap = torch.randn(R, n, device=dev, dtype=torch.bfloat16)
    dO = torch.randn(T, d, device=dev, dtype=torch.bfloat16)
    jobs = {'dW1': (x, dH, True), 'dW2': (Ap, dO, False)}
    for name, (a, b, ga) in jobs.items():
        M, N = a.shape[1], b.shape[1]
        fl = 2 * R * M * N
        # cuBLAS: a dense bmm of the same sizes (rows split evenly)
        Re = R // E
        A = torch.randn(E, Re, M, device=dev, dtype=torch.bfloat16)
        B = torch.randn(E, Re, N, device=dev, dtype=torch.bfloat16)
        cub = {}
        cub['bf16'] = do_bench(lambda: torch.bmm(A.transpose(1, 2), B), warmup=25, rep=100)
        try:
            cub['fp32'] = do_bench(lambda: torch.bmm(A.transpose(1, 2), B, out_dtype=torch.float32), warmup=25, rep=100)
        except Exception as e:
            cub['fp32'] = float('nan')
        del A, B
        for od, vs in ((torch.float32, [('narrow', False, True), ('wide', True, True)]),
                       (torch.bfloat16, [('narrow-tma', False, True), ('wide-tma', True, True), ('wide-reg', True, False)])):
            outs, times = {}, {v[0]: [] for v in vs}
            for v, wide, tma in vs:
                variant(wide, tma)
                outs[v] = sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=od, order=order)
            torch.cuda.synchronize()
            for rnd in range(3):
                for v, wide, tma in vs:
                    variant(wide, tma)
                    times[v].append(do_bench(lambda: sk.wgrad(a, b, r, gather_a=ga, gather_b=not ga, out_dtype=od,
                                                              order=order), warmup=25, rep=200))
            ref = outs[vs[0][0]].float()
            cb = cub['fp32' if od == torch.float32 else 'bf16']
            line = []
            for v, _, _ in vs:
                ms = statistics.median(times[v])
                diff = (outs[v].float() - ref).abs().max().item() / ref.abs().max().item()
                line.append(f"{v} {ms*1e3:7.1f} us {fl/ms/1e9:4.0f} TF ({fl/ms/1e9/(fl/cb/1e9):.2f} cuBLAS) "
                            f"[{' '.join(f'{t*1e3:.0f}' for t in times[v])}] diff {diff:.1e}")
            print(f"{label} {name} {str(od)[6:]}: cuBLAS {fl/cb/1e9:.0f} TF | " + " | ".join(line), flush=True)
        del outs
    del x, dH, Ap, dO
    torch.cuda.empty_cache()
variant(True, True)
