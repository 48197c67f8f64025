"""Each expert GEMM kernel of a `bench.py --mode=kernels` log against two floors: cuBLAS's time for
its FLOPs (the log's cuBLAS TFLOPS) and the time to move its least HBM bytes at a bandwidth given.

    python docs/results/scripts/io_floor.py LOG [TB/s]

The least bytes: every operand read once and every output written once (a gathered x or dO read
once a token, its K reuses from L2), all in bf16 as bench.py's layer has them (its weight
gradients too). 'serial' is the cuBLAS time plus the bytes' time, a rough model of a kernel that
does not overlap its epilogue's traffic with its MMAs: cuBLAS's time already holds its own traffic,
so the sum counts some bytes twice."""
import re
import sys

log, bw = sys.argv[1], float(sys.argv[2]) * 1e12 if len(sys.argv) > 2 else 4.3e12
KERNELS = {'_up_swiglu_kernel': 'up (h, a)', '_grouped_mm_hopper_kernel': "y, dX~ (mean)",
           '_down_bwd_hopper_kernel': "dA' (dH, A', dS)", '_wgrad_hopper_kernel': 'dW1, dW2 (mean)'}


def least_bytes(kernel, T, d, n, E, K):
    R, x, w1, w2 = T * K, T * d * 2, E * d * 2 * n * 2, E * n * d * 2
    if kernel == '_up_swiglu_kernel':          # x, W1 in; h (R, 2n) and a (R, n) out
        return x + w1 + R * 2 * n * 2 + R * n * 2
    if kernel == '_grouped_mm_hopper_kernel':  # y = a W2 and dX~ = dH W1^T, half each of the two calls
        return ((R * n * 2 + w2 + R * d * 2) + (R * 2 * n * 2 + w1 + R * d * 2)) / 2
    if kernel == '_down_bwd_hopper_kernel':    # dO, W2, h in; dH, A', dS out
        return x + w2 + R * 2 * n * 2 + R * 2 * n * 2 + R * n * 2 + R * 4
    if kernel == '_wgrad_hopper_kernel':       # dW2 = A'^T dO and dW1 = x^T dH, half each
        return ((R * n * 2 + x + w2) + (x + R * 2 * n * 2 + w1)) / 2
    raise KeyError(kernel)


print(f"{'shape':<26}{'kernel':<20}{'ours us':>9}{'cuBLAS us':>11}{'bytes us':>10}{'GB':>6}"
      f"{'max/ours':>10}{'serial/ours':>13}")
shape = None
for line in open(log):
    m = re.match(r'(\d+)x(\d+) (\d+)/(\d+)/(\d+) ', line)
    if m:
        T, d, n, E, K = map(int, m.groups())
        shape = f"{T}x{d} {n}/{E}/{K}"
        continue
    f = line.split()
    if shape and f and f[0] in KERNELS and len(f) >= 8:
        us, tflops, cublas = float(f[3]), float(f[5]), float(f[6])
        t_cublas = tflops * us / cublas                  # the same FLOPs at cuBLAS's rate
        b = least_bytes(f[0], T, d, n, E, K)
        t_bytes = b / bw * 1e6
        print(f"{shape:<26}{KERNELS[f[0]]:<20}{us:9.1f}{t_cublas:11.1f}{t_bytes:10.1f}{b / 1e9:6.2f}"
              f"{max(t_cublas, t_bytes) / us:10.2f}{(t_cublas + t_bytes) / us:13.2f}")
