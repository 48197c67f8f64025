"""Whether the up-projection's consumers gain from one 64 x 256 wgmma a k step (gate and up together) instead of two
64 x 128 (each reading the gathered rows from shared memory again): a proxy kernel of 12 warps (two consumer
warpgroups and the producer, `sonic_kernels._ws_produce`), no epilogue warpgroup, so that ptxas has 168 registers a
thread (16 warps leave it 128, and the 64 x 256 instruction needs ~154). Its consumers store only each row's sum of
its accumulators (a check of the MMAs, and what keeps them live); h and a are not written. `up_wide(..., wide)`
picks the form.
Timed beside the tree's up-projection (a part) and cuBLAS on a dense GEMM of its size, alternating, while nvidia-smi
samples the SM clock and power (the d = 4096 shapes run at the H200's power cap).
usage: upwide.py OUT.json [SHAPE ...]"""
import json, subprocess, sys, time
import torch
import sonic_kernels as sk
from sonic_kernels import gluon, gl, mbarrier, warpgroup_mma, warpgroup_mma_wait, fence_async_shared, gl_tma
from sonic_kernels import _ws_produce, _ws_ring, _ws_items, _db_item, WG_PRODUCER_WARPS


@gluon.jit
def _uw_consume(g_smem, w_smem, ready_t, ready_c, empty, S, stride_s, tile_expert, tile_row0, offsets, D, num_n, n_items,
                HH: gl.constexpr, MMA_N: gl.constexpr):
    STAGES: gl.constexpr = w_smem.type.shape[0] // 2
    BLOCK_K: gl.constexpr = w_smem.type.shape[1]
    BLOCK_N: gl.constexpr = w_smem.type.shape[2]
    HALF: gl.constexpr = g_smem.type.shape[1]
    dt: gl.constexpr = w_smem.type.element_ty
    WIDE: gl.constexpr = MMA_N == 2 * BLOCK_N
    n_k = (D + BLOCK_K - 1) // BLOCK_K
    it = 0
    # W1's gate and up blocks of a stage lie side by side: one [BLOCK_K, 2 BLOCK_N] operand (WIDE)
    w_wide = w_smem._reinterpret(dt, [STAGES, BLOCK_K, 2 * BLOCK_N],
                                 gl.NVMMASharedLayout.get_default_for([BLOCK_K, 2 * BLOCK_N], dt))
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, MMA_N, 16])
    rs = gl.arange(0, HALF, layout=gl.SliceLayout(1, mma))
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
        if WIDE:
            acc = gl.zeros((HALF, 2 * BLOCK_N), gl.float32, mma)
            for j in range(0, n_k):
                s = it % STAGES
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()
                acc = warpgroup_mma(g_smem.index(2 * s + HH), w_wide.index(s), acc, is_async=True)
                acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc,))
                if j > 0:
                    mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc,))
            rsum = gl.sum(acc, axis=1)
        else:
            acc_g = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
            acc_u = gl.zeros((HALF, BLOCK_N), gl.float32, mma)
            for j in range(0, n_k):
                s = it % STAGES
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()
                acc_g = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s), acc_g, is_async=True)
                acc_u = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s + 1), acc_u, is_async=True)
                acc_g, acc_u = warpgroup_mma_wait(num_outstanding=2, deps=(acc_g, acc_u))
                if j > 0:
                    mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
                it += 1
            acc_g, acc_u = warpgroup_mma_wait(num_outstanding=0, deps=(acc_g, acc_u))
            rsum = gl.sum(acc_g, axis=1) + gl.sum(acc_u, axis=1)
        mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
        rows = row0 + HH * HALF + rs
        gl.store(S + pn.to(gl.int64) * stride_s + rows, rsum, mask=rows < row_end)


@gluon.jit
def _uw_consumer0(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items):
    _uw_consume(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items, 0, 128)


@gluon.jit
def _uw_consumer1(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items):
    _uw_consume(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items, 1, 128)


@gluon.jit
def _uw_consumer0_wide(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items):
    _uw_consume(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items, 0, 256)


@gluon.jit
def _uw_consumer1_wide(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items):
    _uw_consume(g, w, rt, rc, em, S, ss, te, tr, off, D, num_n, n_items, 1, 256)


@gluon.jit
def _uw_kernel(X, W1, S, stride_s, gather, tile_expert, tile_row0, offsets, N, D, E, stride_xt,
               BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
               NB: gl.constexpr, MMA_N: gl.constexpr, CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = X.dtype.element_ty
    HALF: gl.constexpr = BLOCK_M // 2
    g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF, BLOCK_K], dt)
    w_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK_N], dt)
    g_smem = gl.allocate_shared_memory(dt, [2 * STAGES, HALF, BLOCK_K], g_layout)
    w_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, BLOCK_N], w_layout)
    ready_t, ready_c, empty = _ws_ring(STAGES)
    w_desc = gl_tma.make_tensor_descriptor(W1, shape=[E * D, 2 * N], strides=[2 * N, 1],
                                           block_shape=[BLOCK_K, BLOCK_N], layout=w_layout)
    num_n, n_items = _ws_items(offsets, E, N, BLOCK_M, BLOCK_N, NB)
    cargs = (g_smem, w_smem, ready_t, ready_c, empty, S, stride_s, tile_expert, tile_row0, offsets, D, num_n, n_items)
    pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty, X, gather, tile_expert, tile_row0, offsets,
             N, D, stride_xt, num_n, n_items, True)
    if MMA_N == 2 * BLOCK_N:   # the warp_specialize's partitions take constexprs only as literals
        gl.warp_specialize([(_uw_consumer0_wide, cargs), (_uw_consumer1_wide, cargs), (_ws_produce, pargs)],
                           [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])
    else:
        gl.warp_specialize([(_uw_consumer0, cargs), (_uw_consumer1, cargs), (_ws_produce, pargs)],
                           [4, WG_PRODUCER_WARPS], [CONSUMER_REGS, PRODUCER_REGS])


# 12 warps: 168 registers a thread at launch, a pool of 64,512: the default consumer gets what is left
UW_CONFIG = dict(BLOCK_N=128, BLOCK_K=64, STAGES=4, CONSUMER_REGS=216, PRODUCER_REGS=72)


def up_wide(x, w1, r, wide):
    """Each routed row's sum of its gate and up pre-activations by the proxy: fp32, num_n rows of the tile map's
    rows (grouped order), flat."""
    E, d, n = w1.shape[0], w1.shape[1], w1.shape[2] // 2
    sk._set_allocator()
    num_n = sk.cdiv(n, UW_CONFIG["BLOCK_N"])
    stride_s = r.tile_expert.numel() * sk.BLOCK_M
    S = torch.zeros(num_n * stride_s, device=x.device, dtype=torch.float32)
    _uw_kernel[(sk._n_programs(x.device, r.tile_expert.numel() * num_n),)](
        x, w1, S, stride_s, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, n, d, E, x.stride(0),
        BLOCK_M=sk.BLOCK_M, NB=sk.next_pow2(E), MMA_N=2 * UW_CONFIG["BLOCK_N"] if wide else UW_CONFIG["BLOCK_N"], num_warps=4, **UW_CONFIG)
    return S


SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
          "120B": (32768, 4096, 2048, 64, 4)}


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)


def check(T, d, n, E, K):
    """The proxy's row sums against fp32 torch on the grouped rows, both forms; returns the worst relative errors."""
    r = routing(T, E, K)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    offs = r.offsets.tolist()
    rows = x[r.gather_idx.long()].float()
    ref = torch.empty(sk.cdiv(n, 128), T * K, device="cuda")
    for e in range(E):
        a, b = offs[e], offs[e + 1]
        y = rows[a:b] @ w1[e].float()
        for p in range(ref.shape[0]):
            ref[p, a:b] = y[:, p * 128:(p + 1) * 128].sum(1) + y[:, n + p * 128:n + (p + 1) * 128].sum(1)
    out = {}
    for wide in (False, True):
        S = up_wide(x, w1, r, wide)
        R, st = T * K, r.tile_expert.numel() * sk.BLOCK_M
        got = torch.stack([S[p * st: p * st + R] for p in range(ref.shape[0])])
        out["wide" if wide else "two"] = ((got - ref).norm() / ref.norm()).item()
    return out


if __name__ == "__main__":
    names = sys.argv[2:] or list(SHAPES)
    res = {"check": {}, "timing": []}
    for name, shape in (("small", (1000, 256, 256, 8, 2)), ("odd", (777, 512, 384, 6, 3))):
        res["check"][name] = check(*shape)
        print("check", name, res["check"][name], flush=True)
    from triton.testing import do_bench
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            "-lms", "50"], stdout=subprocess.PIPE, text=True)
    spans = []
    for name in names:
        T, d, n, E, K = SHAPES[name]
        r = routing(T, E, K)
        R = T * K
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        h = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
        B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
        assert sk._use_hopper_up(x, w1)
        s2, s1 = up_wide(x, w1, r, False), up_wide(x, w1, r, True)
        print(name, "two vs wide row sums, relative:", ((s1 - s2).norm() / s2.norm()).item(), flush=True)
        flops = 2 * R * 2 * n * d
        rep = 1500 if d == 4096 else 600
        for rnd in range(3):
            for v, f in (("tree", lambda: sk._up_hopper(x, w1, r, h, a)), ("12 warps, two 64x128", lambda: up_wide(x, w1, r, False)),
                         ("12 warps, one 64x256", lambda: up_wide(x, w1, r, True)), ("cuBLAS", lambda: torch.mm(A_, B_))):
                f(); torch.cuda.synchronize()
                t0 = time.time()
                ms = do_bench(f, warmup=25, rep=rep)
                spans.append((name, v, rnd, t0, time.time(), ms, flops))
                print(f"{name} {v} round {rnd}: {ms * 1e3:8.1f} us", flush=True)
    time.sleep(0.2)
    smi.terminate()
    samples = []
    for line in smi.stdout.read().splitlines():
        try:
            ts, clk, pw = [v.strip() for v in line.split(",")]
            t = time.mktime(time.strptime(ts.split(".")[0], "%Y/%m/%d %H:%M:%S")) + float("0." + ts.split(".")[1])
            samples.append((t, float(clk), float(pw)))
        except ValueError:
            pass
    med = lambda v: v[len(v) // 2] if v else float("nan")
    for name, v, rnd, t0, t1, ms, flops in spans:
        inside = [s for s in samples if t0 + 0.3 <= s[0] <= t1]
        clk, pw = sorted(s[1] for s in inside), sorted(s[2] for s in inside)
        print(f"{name:5s} {v:22s} round {rnd}: {ms * 1e3:8.1f} us {flops / ms / 1e9:5.0f} TFLOPS | clock {med(clk):5.0f} MHz "
              f"| power {med(pw):4.0f} W | {ms * 1e-3 * med(clk):6.3f} M cycles | {len(inside)} samples", flush=True)
        res["timing"].append(dict(shape=name, variant=v, round=rnd, us=ms * 1e3, clock_mhz=med(clk), power_w=med(pw)))
    json.dump(res, open(sys.argv[1], "w"), indent=1)
