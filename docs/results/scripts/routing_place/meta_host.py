"""routing_metadata alone, the previous commit's (count, cumsum, scatter, tile map, arange) against this one's
(count, cumsum, place), in one process, calls alternating: host time of a call (GPU drained before, median of
200) and GPU time (do_bench), at the 1.4B and 7B shapes' pair lists (plain top-K, pair_tok None)."""
import importlib.util, os, statistics, sys, time
import torch, triton
import sonic_kernels as new
spec = importlib.util.spec_from_file_location('sk_old', os.path.join(os.getcwd(), '.gpu/old/sonic_kernels.py'))
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)

for label, T, E, K in [('1.4B 256/128/8', 40960, 128, 8), ('1.4B 1024/32/2', 40960, 32, 2), ('7B 256/128/8', 24576, 128, 8),
                       ('h200_moe', 16384, 128, 8)]:
    torch.manual_seed(0)
    idx = torch.rand(T, E, device='cuda').topk(K, dim=1).indices
    exp, score = idx.flatten(), torch.rand(T * K, device='cuda')
    a = old.routing_metadata(None, exp, score, T, E); b = new.routing_metadata(None, exp, score, T, E)
    same = all(torch.equal(u, v) for u, v in zip(a, b))
    hs = {'old': [], 'new': []}
    for i in range(400):
        m, key = (old, 'old') if i % 2 == 0 else (new, 'new')
        torch.cuda.synchronize()
        t0 = time.perf_counter(); m.routing_metadata(None, exp, score, T, E); hs[key].append((time.perf_counter() - t0) * 1e6)
    torch.cuda.synchronize()
    g = {k: triton.testing.do_bench(lambda m=m: m.routing_metadata(None, exp, score, T, E), warmup=25, rep=100) * 1e3
         for k, m in (('old', old), ('new', new))}
    print(f"{label:16s} same={same} host old {statistics.median(hs['old']):5.0f} us new {statistics.median(hs['new']):5.0f} us | "
          f"GPU old {g['old']:5.1f} us new {g['new']:5.1f} us", flush=True)
