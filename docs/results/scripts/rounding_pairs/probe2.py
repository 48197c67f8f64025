"""_round_pairs_kernel as it now is (experts walked in chunks, int32 tiles, the unused slots marked by programs of
their own) at the README's rounding shape (T = 16384, E = 128, K = 8, nearest, tile 128), by do_bench under launch
settings (ROUND_PAIRS_T, ROUND_PAIRS_E, ROUND_PAIRS_WARPS), each checked against round_pairs' defaults; then the
select kernel alone under launch settings (BLOCK_T, num_warps), each checked too, and the host's time to enqueue
round_pairs.
Run from the repository root: python docs/results/scripts/rounding_pairs/probe2.py"""
import sys, time
sys.path.insert(0, '.')
import torch
import triton
import sonic_kernels as sk

T, E, K, tile, mode = 16384, 128, 8, 128, "nearest"
torch.manual_seed(0)
x = torch.randn(T, 1536, device='cuda', dtype=torch.bfloat16)
w = torch.randn(E, 1536, device='cuda') * 0.02
idx, gates, _, choices, S, CH = sk.router(x, w, torch.zeros(E, device='cuda'), K, "softmax_topk", True, "bf16x2",
                                           scores=True)
want = sk.round_pairs_impl(idx, gates, S, CH, choices, tile, mode)
print(f"T {T} E {E} K {K}: R_max {want[0].numel()}, defaults {sk.ROUND_PAIRS_T, sk.ROUND_PAIRS_E, sk.ROUND_PAIRS_WARPS}")
default = (sk.ROUND_PAIRS_T, sk.ROUND_PAIRS_E, sk.ROUND_PAIRS_WARPS)
for cfg in [default, (128, 16, 4), (32, 16, 1), (64, 32, 4), (32, 8, 1), (128, 8, 2), (256, 16, 8), (64, 16, 2)]:
    sk.ROUND_PAIRS_T, sk.ROUND_PAIRS_E, sk.ROUND_PAIRS_WARPS = cfg
    got = sk.round_pairs_impl(idx, gates, S, CH, choices, tile, mode)
    assert all(torch.equal(a, b) for a, b in zip(got, want)), cfg
    ms = triton.testing.do_bench(lambda: sk.round_pairs_impl(idx, gates, S, CH, choices, tile, mode), warmup=20, rep=100)
    print(f"round_pairs_impl whole, pairs kernel {cfg}: {ms * 1e3:8.1f} us")
sk.ROUND_PAIRS_T, sk.ROUND_PAIRS_E, sk.ROUND_PAIRS_WARPS = default
sel, load = torch.empty_like(want[3]), torch.empty_like(want[4])
for bt, warps in [(2048, 4), (1024, 4), (4096, 4), (4096, 8), (8192, 8), (8192, 16), (16384, 16)]:
    select = lambda: sk._round_select_kernel[(E,)](S, CH.view(torch.int8), choices, sel.view(torch.int8), load, T, E,
                                                   tile, MODE=0, BLOCK_T=bt, num_warps=warps)
    select()
    assert torch.equal(sel, want[3]) and torch.equal(load, want[4]), (bt, warps)
    ms = triton.testing.do_bench(select, warmup=20, rep=100)
    print(f"_round_select_kernel alone, BLOCK_T {bt:5d} warps {warps:2d}: {ms * 1e3:.1f} us")
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(50):
    sk.round_pairs(idx, gates, S, CH, choices, tile, mode)
t1 = time.perf_counter()
torch.cuda.synchronize()
print(f"round_pairs host enqueue: {(t1 - t0) / 50 * 1e6:.1f} us a call")
