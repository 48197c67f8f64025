"""A prototype: the up-projection (h = X[gather] @ W1_e, a = silu(h_gate) * h_up) on a 2-CTA cluster whose two CTAs
take two 128-row tiles of one expert and share W1's blocks by TMA multicast, so each CTA pulls half the weight bytes
from L2. Needs Triton 3.9's Gluon (a two-CTA mbarrier: both CTAs' consumers arrive on CTA 0's copy, which CTA 0's
producer waits on before it multicasts into a stage both CTAs hold). Not in the kernels: it runs only on Triton 3.9,
which no torch release pins yet, and it was no faster than the kernel in the tree (docs/LOG.md, 2026-12-03).

The kernel is written for the cluster, as Gluon's CGA layouts ask: the gathered rows, the accumulators and the stores
are split over the pair by rows (cga_layout [[1, 0]]), W1's blocks are held whole by both ([[0, 0]]). A cluster item is
an expert's 256-row block (its two tiles; past the expert's rows, masked) times a BLOCK_N chunk of gate and up. The
consumers run their own epilogue from registers (no epilogue warpgroup: three warpgroups, 4 stages of 48 KB).

The same kernel runs on one CTA a cluster (ctas=1: 128-row items, W1 loaded by each CTA), so the two differ only
in the multicast; store=0 masks the epilogue's stores off, to see what they cost.

usage: upmc.py check             float64 and the Hopper kernel in the tree, on small shapes
       upmc.py time OUT.json     120B 2048/64/4, 30B and 7B against the tree's kernel and cuBLAS
       upmc.py ring OUT.json     the ring in 32-column steps, 8 stages (the pair waits on each other at each stage:
                                 more, smaller stages give it slack), against 64-column steps, 4 stages"""
import json, sys
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.ampere import async_copy as gl_async_copy
from triton.experimental.gluon.language.nvidia.hopper import (fence_async_shared, mbarrier, tma as gl_tma,
                                                              warpgroup_mma, warpgroup_mma_wait)
import sonic_kernels as sk



@gluon.constexpr_function
def _split(num_ctas):   # rows over the pair: cluster row i lives in CTA i // (rows / 2)
    return [[1, 0]] if num_ctas == 2 else []


@gluon.constexpr_function
def _whole(num_ctas):   # both CTAs hold all of it
    return [[0, 0]] if num_ctas == 2 else []

NB = gl.constexpr(512)           # experts at most: a vector of their offsets finds an item's expert


@gluon.jit
def _mc_item(item, num_n, offsets, E, BM2: gl.constexpr):
    # a cluster item: expert e's 256-row block b (rows row0 to row0 + 255, those from row_end on masked), N chunk pn
    lay: gl.constexpr = gl.BlockedLayout([1], [32], [4], [0], cga_layout=[[0]] * (gl.num_ctas() - 1))
    ex = gl.arange(0, NB, layout=lay)
    lo = gl.load(offsets + ex, mask=ex < E, other=0)
    hi = gl.load(offsets + ex + 1, mask=ex < E, other=0)
    blocks = (hi - lo + BM2 - 1) // BM2
    ends = gl.cumsum(blocks, 0)
    t = item // num_n
    e = gl.sum((ends <= t).to(gl.int32), 0)
    mine = ex == e
    b = t - gl.sum(gl.where(mine, ends - blocks, 0), 0)
    return e, gl.sum(gl.where(mine, lo, 0), 0) + b * BM2, gl.sum(gl.where(mine, hi, 0), 0), item % num_n


@gluon.jit
def _mc_n_items(offsets, E, N, BM2: gl.constexpr, BLOCK_N: gl.constexpr):
    lay: gl.constexpr = gl.BlockedLayout([1], [32], [4], [0], cga_layout=[[0]] * (gl.num_ctas() - 1))
    ex = gl.arange(0, NB, layout=lay)
    lo = gl.load(offsets + ex, mask=ex < E, other=0)
    hi = gl.load(offsets + ex + 1, mask=ex < E, other=0)
    num_n = (N + BLOCK_N - 1) // BLOCK_N
    return num_n, gl.sum((hi - lo + BM2 - 1) // BM2, axis=0) * num_n


@gluon.jit
def _mc_rows(row0, ms, HH: gl.constexpr, HALF: gl.constexpr):
    # cluster row i of consumer half HH: CTA c = i // HALF takes rows c * 2 HALF + HH HALF + (i % HALF) of the block
    return row0 + (ms // HALF) * (2 * HALF) + HH * HALF + ms % HALF


@gluon.jit
def _mc_produce(w_desc, g_smem, w_smem, ready_t, ready_c, empty_x, empty_w, X, gather, offsets, N, D, E, stride_xt,
                num_n, n_items):
    HALF2: gl.constexpr = g_smem.type.shape[1]        # a consumer half's rows over the pair (HALF a CTA)
    HALF: gl.constexpr = HALF2 // gl.num_ctas()
    BLOCK_K: gl.constexpr = g_smem.type.shape[2]
    BLOCK_N: gl.constexpr = w_smem.type.shape[2]
    STAGES: gl.constexpr = g_smem.type.shape[0] // 2
    TILE_BYTES: gl.constexpr = BLOCK_K * BLOCK_N * 2
    MC: gl.constexpr = gl.num_ctas() > 1   # W1's blocks multicast to the pair, or each CTA's own
    layout: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0], cga_layout=_split(gl.num_ctas()))
    ms = gl.arange(0, HALF2, layout=gl.SliceLayout(1, layout))
    ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(0, layout))
    it = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, row0, row_end, pn = _mc_item(item, num_n, offsets, E, 2 * HALF2)
        r0 = _mc_rows(row0, ms, 0, HALF)
        r1 = _mc_rows(row0, ms, 1, HALF)
        m0 = r0 < row_end
        m1 = r1 < row_end
        p0 = X + gl.load(gather + r0, mask=m0, other=0).to(gl.int64)[:, None] * stride_xt
        p1 = X + gl.load(gather + r1, mask=m1, other=0).to(gl.int64)[:, None] * stride_xt
        for k0 in range(0, D, BLOCK_K):
            s = it % STAGES
            ph = ((it // STAGES) & 1) ^ 1                         # a new barrier passes phase 1
            mbarrier.wait(empty_x.index(s), ph)                  # this CTA's consumers are done with the stage
            mbarrier.wait(empty_w.index(s), ph)                  # and both CTAs' (waited in CTA 0 only)
            mbarrier.expect(ready_t.index(s), 2 * TILE_BYTES)
            gl_tma.async_load(w_desc, [e * D + k0, pn * BLOCK_N], ready_t.index(s), w_smem.index(2 * s), multicast=MC)
            gl_tma.async_load(w_desc, [e * D + k0, N + pn * BLOCK_N], ready_t.index(s), w_smem.index(2 * s + 1),
                              multicast=MC)
            kk = k0 + ks
            mk = (kk < D)[None, :]
            gl_async_copy.async_load(g_smem.index(2 * s), p0 + kk[None, :], mask=m0[:, None] & mk)
            gl_async_copy.async_load(g_smem.index(2 * s + 1), p1 + kk[None, :], mask=m1[:, None] & mk)
            gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
            it += 1
    # the producer's tail: CTA 0 stays until both CTAs' consumers have let go of every stage, so that none of their
    # arrivals on its barriers comes after it has exited
    for i in range(STAGES):
        s = it % STAGES
        mbarrier.wait(empty_w.index(s), ((it // STAGES) & 1) ^ 1)
        it += 1


@gluon.jit
def _mc_consume(g_smem, w_smem, ready_t, ready_c, empty_x, empty_w, H, A, offsets, N, D, E, stride_hr, stride_ar,
                num_n, n_items, store, HH: gl.constexpr):
    HALF2: gl.constexpr = g_smem.type.shape[1]
    HALF: gl.constexpr = HALF2 // gl.num_ctas()
    BLOCK_K: gl.constexpr = g_smem.type.shape[2]
    BLOCK_N: gl.constexpr = w_smem.type.shape[2]
    STAGES: gl.constexpr = g_smem.type.shape[0] // 2
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BLOCK_N, 16],
                                                  cga_layout=_split(gl.num_ctas()))
    ms = gl.arange(0, HALF2, layout=gl.SliceLayout(1, mma))
    cs = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, mma))
    n_k = (D + BLOCK_K - 1) // BLOCK_K
    it = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        acc_g = gl.zeros((HALF2, BLOCK_N), gl.float32, mma)
        acc_u = gl.zeros((HALF2, BLOCK_N), gl.float32, mma)
        for j in range(0, n_k):
            s = it % STAGES
            mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
            mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
            fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
            acc_g = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s), acc_g, is_async=True)
            acc_u = warpgroup_mma(g_smem.index(2 * s + HH), w_smem.index(2 * s + 1), acc_u, is_async=True)
            acc_g, acc_u = warpgroup_mma_wait(num_outstanding=2, deps=(acc_g, acc_u))
            if j > 0:
                prev = (it + STAGES - 1) % STAGES
                mbarrier.arrive(empty_x.index(prev), count=1)
                mbarrier.arrive(empty_w.index(prev), count=1)   # to CTA 0's copy
            it += 1
        acc_g, acc_u = warpgroup_mma_wait(num_outstanding=0, deps=(acc_g, acc_u))
        prev = (it + STAGES - 1) % STAGES
        mbarrier.arrive(empty_x.index(prev), count=1)
        mbarrier.arrive(empty_w.index(prev), count=1)
        e, row0, row_end, pn = _mc_item(item, num_n, offsets, E, 2 * HALF2)
        rows = _mc_rows(row0, ms, HH, HALF)
        cols = pn * BLOCK_N + cs
        mask = (rows < row_end * store)[:, None] & (cols < N)[None, :]   # store 0: no stores (a probe)
        rows64 = rows.to(gl.int64)
        g = acc_g.to(H.dtype.element_ty)
        u = acc_u.to(H.dtype.element_ty)
        hp = H + rows64[:, None] * stride_hr + cols[None, :]
        gl.store(hp, g, mask=mask)
        gl.store(hp + N, u, mask=mask)
        gf = g.to(gl.float32)
        a = gf * sk._sigmoid_approx(gf) * u.to(gl.float32)
        gl.store(A + rows64[:, None] * stride_ar + cols[None, :], a.to(A.dtype.element_ty), mask=mask)


@gluon.jit
def _mc_consumer0(g, w, rt, rc, ex, ew, H, A, offsets, N, D, E, shr, sar, num_n, n_items, store):
    _mc_consume(g, w, rt, rc, ex, ew, H, A, offsets, N, D, E, shr, sar, num_n, n_items, store, 0)


@gluon.jit
def _mc_consumer1(g, w, rt, rc, ex, ew, H, A, offsets, N, D, E, shr, sar, num_n, n_items, store):
    _mc_consume(g, w, rt, rc, ex, ew, H, A, offsets, N, D, E, shr, sar, num_n, n_items, store, 1)


@gluon.jit
def _up_mc_kernel(X, W1, H, A, gather, offsets, N, D, E, stride_xt, stride_hr, stride_ar, store,
                  BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, STAGES: gl.constexpr,
                  CONSUMER_REGS: gl.constexpr, PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = X.dtype.element_ty
    HALF2: gl.constexpr = 64 * gl.num_ctas()   # a consumer's rows over the cluster: 64 a CTA
    g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([HALF2, BLOCK_K], dt, cga_layout=_split(gl.num_ctas()))
    w_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, BLOCK_N], dt, cga_layout=_whole(gl.num_ctas()))
    g_smem = gl.allocate_shared_memory(dt, [2 * STAGES, HALF2, BLOCK_K], g_layout)
    w_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, BLOCK_N], w_layout)
    ready_t = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: W1's bytes landed
    ready_c = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: its gathered rows landed
    empty_x = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: its consumers are done
    empty_w = mbarrier.allocate_mbarrier(batch=STAGES, two_ctas=gl.num_ctas() > 1)  # the pair's, in CTA 0: all four are done
    for s in gl.static_range(STAGES):
        mbarrier.init(ready_t.index(s), count=1)
        mbarrier.init(ready_c.index(s), count=4 * 32)
        mbarrier.init(empty_x.index(s), count=2)
        mbarrier.init(empty_w.index(s), count=2)   # a CTA's count: the pair's barrier takes 2 x 2 arrivals
    gl.barrier(cluster=True)   # both CTAs' barriers initialised before any arrival or multicast reaches them
    w_desc = gl_tma.make_tensor_descriptor(W1, shape=[E * D, 2 * N], strides=[2 * N, 1], block_shape=[BLOCK_K, BLOCK_N],
                                           layout=w_layout)
    num_n, n_items = _mc_n_items(offsets, E, N, 2 * HALF2, BLOCK_N)
    cargs = (g_smem, w_smem, ready_t, ready_c, empty_x, empty_w, H, A, offsets, N, D, E, stride_hr, stride_ar, num_n,
             n_items, store)
    pargs = (w_desc, g_smem, w_smem, ready_t, ready_c, empty_x, empty_w, X, gather, offsets, N, D, E, stride_xt, num_n,
             n_items)
    gl.warp_specialize([(_mc_consumer0, cargs), (_mc_consumer1, cargs), (_mc_produce, pargs)], [4, 4],
                       [CONSUMER_REGS, PRODUCER_REGS])


MC_CONFIG = dict(BLOCK_N=128, BLOCK_K=64, STAGES=4, CONSUMER_REGS=232, PRODUCER_REGS=48)   # 48: no spill (40 spilled)


def up_mc(x, w1, r, h=None, a=None, clusters=None, ctas=2, store=1, cfg=None):
    """h and a as sonic_kernels.up_swiglu's, by _up_mc_kernel on clusters of ctas CTAs (1: the same kernel, W1 loaded
    by each CTA); store=0 leaves out the epilogue's stores (a probe)."""
    E, d, n = w1.shape[0], w1.shape[1], w1.shape[2] // 2
    assert E <= NB.value
    R = r.gather_idx.numel()
    h = torch.empty(R, 2 * n, device=x.device, dtype=x.dtype) if h is None else h
    a = torch.empty(R, n, device=x.device, dtype=x.dtype) if a is None else a
    sk._set_allocator()
    items = (r.tile_expert.numel() // 2 + E) * sk.cdiv(n, MC_CONFIG["BLOCK_N"])   # at least the cluster items
    if clusters is None:
        clusters = min(items, torch.cuda.get_device_properties(x.device).multi_processor_count // ctas)
    _up_mc_kernel[(clusters,)](x, w1, h, a, r.gather_idx, r.offsets, n, d, E, x.stride(0), h.stride(0), a.stride(0),
                               store, num_warps=4, num_ctas=ctas, **(cfg or MC_CONFIG))
    return h, a


def routing(T, E, K, empty_last=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(T, E, device="cuda", generator=g)
    if empty_last:
        logits[:, -1] = -float("inf")
    top, idx = logits.topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)


def rel(x, y):
    return ((x.double() - y.double()).norm() / y.double().norm().clamp_min(1e-30)).item()


if __name__ == "__main__":
    out = []
    print("triton", triton.__version__, flush=True)
    if sys.argv[1] == "check":
        torch.manual_seed(0)
        for (T, d, n, E, K) in [(300, 128, 128, 4, 2), (700, 320, 160, 6, 2), (2049, 512, 256, 32, 8), (777, 1536, 384, 8, 2)]:
            r = routing(T, E, K, empty_last=True)
            x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
            w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
            gi, off = r.gather_idx.long(), r.offsets.tolist()
            want = torch.cat([x.double()[gi[off[e]:off[e + 1]]] @ w1[e].double() for e in range(E)])
            ht, at = sk.up_swiglu(x, w1, r)
            for ctas, clusters in ((2, None), (2, 1), (2, 3), (1, None), (1, 2)):
                h, a = up_mc(x, w1, r, clusters=clusters, ctas=ctas)
                torch.cuda.synchronize()
                e = dict(h_f64=rel(h, want), h_tree=rel(h, ht), a_tree=rel(a, at), h_equal=float(torch.equal(h, ht)))
                print(f"check {(T, d, n, E, K)} ctas {ctas} clusters {clusters}: " + " ".join(f"{k} {v:.1e}" for k, v in e.items()),
                      flush=True)
    elif sys.argv[1] == "ring":
        from triton.testing import do_bench
        ring8 = dict(MC_CONFIG, BLOCK_K=32, STAGES=8)
        for name, (T, d, n, E, K) in {"120B": (32768, 4096, 2048, 64, 4), "30B": (32768, 4096, 256, 256, 16)}.items():
            r = routing(T, E, K)
            x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
            w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
            R = T * K
            h, a = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
            h2, a2 = torch.empty_like(h), torch.empty_like(a)
            sk._up_hopper(x, w1, r, h, a)
            flops = 2 * R * 2 * n * d
            variants = [("tree", lambda: sk._up_hopper(x, w1, r, h, a))]
            for ring, cfg in (("k64 x4", MC_CONFIG), ("k32 x8", ring8)):
                for ctas in (2, 1):
                    for store in (1, 0):
                        variants.append((f"{ring} ctas {ctas} stores {store}",
                                         lambda cfg=cfg, ctas=ctas, store=store: up_mc(x, w1, r, h2, a2, ctas=ctas, store=store, cfg=cfg)))
            for rnd in range(3):
                for vname, f in variants:
                    ms = do_bench(f, warmup=10, rep=200)
                    print(f"{name} {vname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
                    out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3))
            for ctas in (2, 1):
                up_mc(x, w1, r, h2, a2, ctas=ctas, cfg=ring8)
                print(f"{name} k32 x8 ctas {ctas}: h equal to the tree's: {torch.equal(h, h2)}, a: {torch.equal(a, a2)}", flush=True)
            del r, x, w1, h, a, h2, a2
            torch.cuda.empty_cache()
        json.dump(out, open(sys.argv[2], "w"), indent=1)
    else:
        from triton.testing import do_bench
        for name, (T, d, n, E, K) in {"120B": (32768, 4096, 2048, 64, 4), "30B": (32768, 4096, 256, 256, 16),
                                      "7B": (24576, 1536, 256, 128, 8)}.items():
            r = routing(T, E, K)
            x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
            w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
            R = T * K
            h, a = torch.empty(R, 2 * n, device="cuda", dtype=torch.bfloat16), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
            h2, a2 = torch.empty_like(h), torch.empty_like(a)
            flops = 2 * R * 2 * n * d
            variants = (("tree", lambda: sk._up_hopper(x, w1, r, h, a)), ("multicast", lambda: up_mc(x, w1, r, h2, a2)),
                        ("one CTA", lambda: up_mc(x, w1, r, h2, a2, ctas=1)),
                        ("multicast, no stores", lambda: up_mc(x, w1, r, h2, a2, store=0)),
                        ("one CTA, no stores", lambda: up_mc(x, w1, r, h2, a2, ctas=1, store=0)))
            for rnd in range(3):
                for vname, f in variants:
                    ms = do_bench(f, warmup=10, rep=200)
                    print(f"{name} {vname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
                    out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3))
            for ctas in (2, 1):
                up_mc(x, w1, r, h2, a2, ctas=ctas)
                print(f"{name} ctas {ctas}: h equal to the tree's: {torch.equal(h, h2)}, a: {torch.equal(a, a2)}", flush=True)
            A_ = torch.randn(R, d, device="cuda", dtype=torch.bfloat16)
            B_ = torch.randn(d, 2 * n, device="cuda", dtype=torch.bfloat16)
            ms = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=200)
            print(f"{name} cuBLAS dense ({R}x{d}) @ ({d}x{2 * n}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(shape=name, variant="cuBLAS", us=ms * 1e3))
            del r, x, w1, h, a, h2, a2, A_, B_
            torch.cuda.empty_cache()
        json.dump(out, open(sys.argv[2], "w"), indent=1)
