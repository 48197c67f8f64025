# GPU probe kept for docs/PERF.md (v6): where token rounding's time goes at (16384, 1536, 256, K=8).
# Per routing, one sonic forward+backward is timed and profiled per kernel:
#   topk           plain top-K, T*K pairs
#   round_old      rounded, the pair list padded with unused slots to v5's capacity T*K + E*127
#   round          rounded, the capacity of 'nearest': T*K + E*64 (model.round_tokens now)
#   round_aligned  as round, with the static tile bound cdiv(R, 128) that tile-multiple counts allow
#                  (v5's bound adds E: one partial tile per expert, which rounded counts never have)
# Then 'surplus': what programs of the static grid that find no tile and exit cost, per kernel.
# Run from the repo root:  python docs/probes/probe_round.py [round] [surplus]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton
from triton.testing import do_bench
import sonic_kernels as sk, model
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_down import kernel_profile, layer_args
what = sys.argv[1:] or ['round', 'surplus']
dt = torch.bfloat16
T, d, n, K = 16384, 1536, 256, 8
max_tiles = sk._max_tiles


def args_for(E, route):
    # probe_down's inputs (same seed, weights and routing); round_old pads the rounded list
    x, w1, w2, pt, pe, ps = layer_args(T, d, n, E, K, 'topk' if route == 'topk' else 'rounding')
    if route == 'round_old':  # unused slots go last in token order, so padding keeps the list valid
        pad = T * K + E * 127 - pe.numel()
        pt = torch.cat([pt, pt.new_full((pad,), T)]); pe = torch.cat([pe, pe.new_full((pad,), E)])
        ps = torch.cat([ps.detach(), ps.new_zeros(pad)]).requires_grad_()
    return x, w1, w2, pt, pe, ps


def layer(E, route):
    x, w1, w2, pt, pe, ps = args = args_for(E, route)
    sk._max_tiles = (lambda R, E_: triton.cdiv(R, sk.BLOCK_M)) if route == 'round_aligned' else max_tiles
    dy = torch.randn(T, d, device='cuda', dtype=dt)
    def step():
        for t in (x, w1, w2, ps): t.grad = None
        model.experts_sonic(*args).backward(dy)
    step(); torch.cuda.synchronize()
    R = int((pe < E).sum()); counts = torch.bincount(pe, minlength=E + 1)[:E]
    tiles = int(((counts + 127) // 128).sum())
    t = [do_bench(step, warmup=10, rep=100) for _ in range(3)]
    tf = [do_bench(lambda: model.experts_sonic(*args), warmup=10, rep=100) for _ in range(2)]
    print(f"== E={E} {route:13s} R={R} slots={pe.numel()} tiles used {tiles} / grid bound {sk._max_tiles(pe.numel(), E)}: "
          f"fwd+bwd ms {min(t):.3f} {[round(v, 3) for v in t]} ({18 * R * n * d / min(t) / 1e9:.0f} TF) fwd ms {min(tf):.3f}", flush=True)
    kernel_profile(step, top=9)
    sk._max_tiles = max_tiles
    return min(t)


def surplus():
    # every program reads tile_expert == E and exits: the cost of a static grid's unused part
    E = 256
    w1 = torch.randn(E, d, 2 * n, device='cuda', dtype=dt); w2 = torch.randn(E, n, d, device='cuda', dtype=dt)
    for tiles in (128, 512, 1024):
        te = torch.full((tiles,), E, device='cuda', dtype=torch.int32); tr0 = torch.zeros_like(te)
        off = torch.zeros(E + 1, device='cuda', dtype=torch.int32); gi = torch.zeros(tiles * 128, device='cuda', dtype=torch.int32)
        R = tiles * 128
        x = torch.randn(T, d, device='cuda', dtype=dt); h = torch.empty(R, 2 * n, device='cuda', dtype=dt)
        a = torch.empty(R, n, device='cuda', dtype=dt); y = torch.empty(R, d, device='cuda', dtype=dt)
        up = lambda: sk._up_swiglu_kernel[lambda M: (tiles * triton.cdiv(n, M['BLOCK_N']),)](
            x, w1, h, a, gi, te, tr0, off, n, d, E, x.stride(0), w1.stride(0), w1.stride(1), h.stride(0), a.stride(0),
            BLOCK_M=128, DOT_PREC='tf32')
        mm = lambda: sk._grouped_mm_kernel[lambda M: (tiles * triton.cdiv(d, M['BLOCK_N']),)](
            a, w2, y, te, tr0, off, d, n, E, a.stride(0), w2.stride(0), w2.stride(1), w2.stride(2), y.stride(0),
            BLOCK_M=128, DOT_PREC='tf32')
        print(f"== surplus {tiles} tiles: up_swiglu {do_bench(up, warmup=10, rep=100) * 1e3:.1f} us, "
              f"grouped_mm (d outputs) {do_bench(mm, warmup=10, rep=100) * 1e3:.1f} us", flush=True)


if 'round' in what:
    for E in (64, 256, 512):
        base = layer(E, 'topk')
        for route in ('round_old', 'round', 'round_aligned') if E > 64 else ():
            print(f"   top-K / {route}: {base / layer(E, route):.3f}x", flush=True)
if 'surplus' in what:
    surplus()
# the configs the autotuner picked, per key (v6 keys _wgrad_kernel on the mean rows per expert too)
for name in ('_wgrad_kernel', '_grouped_mm_kernel', '_up_swiglu_kernel', '_down_bwd_kernel'):
    for key, cfg in getattr(sk, name).cache.items():
        print(f"autotune {name} {key[:4]}: {cfg}")
