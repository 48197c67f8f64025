"""Prepared, not run yet. Kernels mode's cuBLAS beside each expert GEMM at 1.4B and 7B, timed as bench.py does (CUDA
events around each dense GEMM, the first of a pass just after the layer) and with an untimed copy of each dense GEMM
just before its timed one (the device busy while the host enqueues it): whether the up-projection's dense GEMM reads
low by the host's launch gap after a host-paced layer (docs/LOG.md, Open). Two alternating rounds of each form.
usage: gapab.py OUT.json   (from the repository root, bench.py's defaults: kernel_iters, kernel_warm_ms)"""
import json, sys
import torch
import bench


def timed_mm_busy(a, w):
    mm = (lambda: torch.bmm(a, w)) if a.shape[0] > 1 else (lambda: torch.mm(a[0], w[0]))
    mm()   # untimed: the device works on it while the host enqueues the timed copy
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    mm()
    end.record()
    return start, end


FORMS = {"events": bench.timed_mm, "busy": timed_mm_busy}
out = []
for label, T, d, n, E, K in [("1.4B", 40960, 768, 256, 128, 8), ("7B", 24576, 1536, 256, 128, 8)]:
    for rnd in range(2):
        for form, fn in FORMS.items():
            bench.timed_mm = fn
            prof = bench.kernel_profile('sonic', T, d, n, E, K, 'topk')
            rows = [dict(name=k['name'], tflops=k['tflops'], cublas_tflops=k['cublas_tflops'])
                    for k in prof['kernels'] if 'tflops' in k]
            print(label, rnd, form, f"host {prof['enqueue_ms']:.2f} ms, GPU {prof['run_ms']:.2f} ms:",
                  "; ".join(f"{r['name']} {r['tflops']:.0f} / {r['cublas_tflops']:.0f}" for r in rows), flush=True)
            out.append(dict(shape=label, round=rnd, form=form, enqueue_ms=prof['enqueue_ms'], run_ms=prof['run_ms'],
                            kernels=rows))
json.dump(out, open(sys.argv[1], "w"), indent=1)
