"""Where a whole layer's fwd+bwd leaves the GPU idle: reps back to back as do_bench runs them (grads
cleared, L2 flushed, no sync between reps), profiled; per rep the kernels' span against their busy time,
and the idle gaps between kernels, summed by the kernel pair around them."""
import os, sys, statistics, collections
import torch
sys.path.insert(0, os.getcwd())
from model import GPTConfig
import moe
from triton.testing import do_bench
from torch.profiler import profile, ProfilerActivity

shapes = [('30B 256/256/16', 32768, 4096, 256, 256, 16), ('120B 2048/64/4', 32768, 4096, 2048, 64, 4),
          ('7B 256/128/8', 24576, 1536, 256, 128, 8), ('1.4B 256/128/8', 40960, 768, 256, 128, 8)]
only = os.environ.get('ONLY')
cache = torch.empty(256 * 2**20 // 4, dtype=torch.int32, device='cuda')
def short(n):
    return n if len(n) < 48 else n[:45] + '...'
for label, T, d, n, E, K in shapes:
    if only and only not in label:
        continue
    torch.manual_seed(1337)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend='sonic')
    layer = moe.MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device='cuda', dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn(T, d, device='cuda', dtype=torch.bfloat16)
    leaves = [x, *layer.parameters()]
    def step():
        out = layer(x)
        aux = layer.aux_loss
        torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)])
    step(); step(); torch.cuda.synchronize()
    fl = 18 * T * K * n * d
    ms = do_bench(step, warmup=25, rep=max(100, 15 * 40), grad_to_none=leaves, return_mode='median')
    reps = 8
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(reps):
            for t in leaves:
                t.grad = None
            cache.zero_()
            torch.cuda._sleep(100)          # a marker kernel: a rep starts after it
            ev[i][0].record(); step(); ev[i][1].record()
        cache.zero_()
        torch.cuda._sleep(100)
        torch.cuda.synchronize()
    evms = [a.elapsed_time(b) for a, b in ev]
    ks = sorted([e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and not e.is_async
                 and e.name != 'Memcpy' ], key=lambda e: e.time_range.start)
    segs, cur = [], None
    for e in ks:
        if 'spin' in e.name.lower() or 'sleep' in e.name.lower():
            if cur is not None:
                segs.append(cur)
            cur = []
        elif cur is not None:
            cur.append(e)
    segs = [s[:-1] for s in segs]  # each segment ends with the next rep's L2 flush
    spans, busys, gaps = [], [], collections.Counter()
    ngap = collections.Counter()
    for s in segs[1:]:             # the first rep may wait on the host
        spans.append((s[-1].time_range.end - s[0].time_range.start) / 1e3)
        busys.append(sum(e.time_range.elapsed_us() for e in s) / 1e3)
        for a, b in zip(s, s[1:]):
            g = b.time_range.start - a.time_range.end
            if g > 3:
                key = f"{short(a.name)} -> {short(b.name)}"
                gaps[key] += g
                ngap[key] += 1
    nr = len(spans)
    sp, bu = statistics.median(spans), statistics.median(busys)
    print(f"{label}: do_bench f+b {ms:.3f} ms ({fl/ms/1e9:.0f} TFLOPS); profiled reps: event {statistics.median(evms[1:]):.3f}, "
          f"kernel span {sp:.3f}, busy {bu:.3f} ({fl/bu/1e9:.0f} TFLOPS at busy), idle {sp-bu:.3f} ms; "
          f"{len(segs[1][:]) if len(segs) > 1 else 0} kernels a rep", flush=True)
    for key, g in gaps.most_common(12):
        print(f"    {g/nr:8.1f} us a rep over {ngap[key]/nr:.1f} gaps  {key}")
    # the biggest single gaps of one rep, in order
    s = segs[len(segs) // 2]
    big = [(b.time_range.start - a.time_range.end, i, a.name, b.name) for i, (a, b) in enumerate(zip(s, s[1:]))]
    print("    one rep's kernels with the gap after each (us):")
    for i, e in enumerate(s):
        g = (s[i + 1].time_range.start - e.time_range.end) if i + 1 < len(s) else 0
        print(f"      {i:3d} {e.time_range.elapsed_us():9.1f} +{g:7.1f}  {short(e.name)}")
    del layer, x, dout, leaves
    torch.cuda.empty_cache()
