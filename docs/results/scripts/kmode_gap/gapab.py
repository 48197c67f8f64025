"""Kernels mode's cuBLAS beside each expert GEMM at 1.4B and 7B, three ways in the same profiled passes: CUDA events
around each dense GEMM as bench.py times it (the first of a pass just after the layer), the profiler's kernel time
of those same calls (a record_function range around each), and events around a second copy of each GEMM that runs
just after an untimed one (the device busy while the host enqueues the timed copy). Whether the up-projection's dense
GEMM reads low by the host's launch gap after a host-paced layer (docs/LOG.md, Open). Passes alternate the two forms.
usage: gapab.py OUT.json   (from the repository root, with bench.py's kernel_iters and kernel_warm_ms)"""
import json, statistics, sys
import torch
from torch.profiler import profile, record_function, ProfilerActivity
from torch.autograd import DeviceType
import bench


def tflops(g, ms):
    return bench.gemm_flops(g) / (ms * 1e9) if ms > 0 else float('nan')   # nan: the profiler gave no time


def mm(a, w):
    return torch.bmm(a, w) if a.shape[0] > 1 else torch.mm(a[0], w[0])


def timed(a, w, busy, label):
    if busy:
        mm(a, w)   # untimed: the device works on it while the host enqueues the timed copy
    with record_function(label):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        mm(a, w)
        end.record()
    return start, end


out = []
for label, T, d, n, E, K in [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8)]:
    layer, x, backward, step = bench.layer_module('sonic', T, d, n, E, K, 'topk')
    leaves = [x, *layer.parameters()]
    gemms = bench.expert_gemms(T, d, n, E, K)
    dense = bench.dense_inputs(gemms)

    def run():
        bench.clear_grads(leaves)
        step()

    def one_pass(busy, p):
        run()
        return {(k, i): timed(a, w, busy, f"cublas|{int(busy)}|{k}|{i}|{p}")
                for k, pairs in dense.items() for i, (a, w) in enumerate(pairs)}
    run()
    bench.warm_up(lambda: one_pass(False, -1), bench.kernel_warm_ms)
    passes = 2 * bench.kernel_iters
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        evs = [one_pass(p % 2 == 1, p) for p in range(passes)]
        torch.cuda.synchronize()
    ours = {}
    prof_ms = {}   # (busy, k, i) -> [kernel ms of each pass]: the range's device time (its kernels)
    span_ms = {}   # the same from the GPU-side annotation's span, where the profiler makes one
    for e in prof.events():
        if e.name.startswith("cublas|"):
            _, b, k, i, p = e.name.split("|")
            key = (int(b), k, int(i))
            if e.device_type == DeviceType.CUDA:
                span_ms.setdefault(key, []).append(e.time_range.elapsed_us() / 1e3)
            else:
                prof_ms.setdefault(key, []).append(e.device_time_total / 1e3)
        elif e.device_type == DeviceType.CUDA and not e.is_async and "hopper" in e.name:
            ours[e.name] = ours.get(e.name, 0.0) + e.time_range.elapsed_us() / 1e3 / passes
    rows = []
    for k, g in gemms.items():
        name = next((o for o in ours if bench.GEMM_ALIASES.get(o) == k), None)
        row = dict(kernel=k, ours_tflops=tflops(g, ours[name]) if name else None)
        for busy in (0, 1):
            ev = sum(statistics.median(evs[p][(k, i)][0].elapsed_time(evs[p][(k, i)][1])
                                       for p in range(passes) if p % 2 == busy) for i in range(len(g)))
            pr = sum(statistics.median(prof_ms.get((busy, k, i), [float('nan')])) for i in range(len(g)))
            sp = sum(statistics.median(span_ms.get((busy, k, i), [float('nan')])) for i in range(len(g)))
            form = "busy" if busy else "plain"
            row[form] = dict(events_tflops=tflops(g, ev), prof_tflops=tflops(g, pr), span_tflops=tflops(g, sp),
                             events_each=[evs[p][(k, 0)][0].elapsed_time(evs[p][(k, 0)][1])
                                          for p in range(passes) if p % 2 == busy])
        rows.append(row)
        print(label, k, f"ours {row['ours_tflops'] or 0:.0f}", "| cuBLAS plain: events {events_tflops:.0f} profiler "
              "{prof_tflops:.0f} span {span_tflops:.0f}".format(**row['plain']),
              "| busy: events {events_tflops:.0f} profiler {prof_tflops:.0f} span {span_tflops:.0f}".format(**row['busy']),
              "| plain first GEMM ms each pass:", " ".join(f"{v:.3f}" for v in row['plain']['events_each']), flush=True)
    out.append(dict(shape=label, rows=rows))
    del layer, x, dense
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
