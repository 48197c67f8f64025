"""A prototype: the weight gradients' dW1 (C_e = X[gather]^T dH over expert e's rows, fp32 as training's) on 2-CTA
clusters whose two CTAs take two 192-row tiles of one expert and N chunk (rows pm = 2 pp and 2 pp + 1 of C_e, its
columns pn 256 wide) and share dH's blocks by TMA multicast: each CTA gathers its own 192 columns of X's rows by
cp.async, and pulls half of dH's bytes from L2. Needs Triton 3.9's Gluon (a two-CTA mbarrier: both CTAs' consumers
arrive on CTA 0's copy, which CTA 0's producer waits on before it multicasts into a stage both CTAs hold). The same
kernel on one CTA a cluster (ctas=1) loads dH in each CTA, so the two differ only in the multicast. A proxy with half
of dH's bytes left out (docs/LOG.md, 2026-12-04) ran at the same cycles and a 3-10% higher clock: this measures what a
real pair keeps of that. Not in the kernels: it runs only on Triton 3.9, which no torch release pins yet.

Written for the cluster as Gluon's CGA layouts ask (as mc_proxy/upmc.py): the gathered blocks, the accumulators and
the stores are split over the pair along C's rows (X's columns), dH's blocks are held whole by both. Stages as the
tree's wide fp32 config: 64-row steps, 4 stages of 56 KB, the gradient stored from registers.

usage: wgmc.py check             float64 and the tree's kernel, small shapes
       wgmc.py time OUT.json     7B, 30B and 120B 2048/64/4 against the tree's kernel and cuBLAS's bmm"""
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
def _cols(num_ctas):   # a tile's columns over the pair: cluster column j lives in CTA j // (columns / 2)
    return [[0, 1]] if num_ctas == 2 else []


@gluon.constexpr_function
def _rows(num_ctas):   # rows over the pair
    return [[1, 0]] if num_ctas == 2 else []


@gluon.constexpr_function
def _whole(num_ctas):  # both CTAs hold all of it
    return [[0, 0]] if num_ctas == 2 else []


@gluon.jit
def _mc_tile(item, num_pp, num_n, offsets, order):
    # a cluster item: expert order[item // (num_pp num_n)], its pair of row tiles pp, its N chunk pn
    e = gl.load(order + item // (num_pp * num_n))
    return e, (item // num_n) % num_pp, item % num_n, gl.load(offsets + e), gl.load(offsets + e + 1)


@gluon.jit
def _mc_produce(desc, g_smem, g2_smem, t_smem, ready_t, ready_c, empty_x, empty_w, X, gather, offsets, order, M,
                stride_xt, num_pp, num_n, n_items):
    STAGES: gl.constexpr = g_smem.type.shape[0]
    BLOCK_K: gl.constexpr = g_smem.type.shape[1]
    BLOCK2: gl.constexpr = g_smem.type.shape[2]      # the pair's first blocks: BLOCK a CTA
    G22: gl.constexpr = g2_smem.type.shape[2]        # the pair's second blocks: G2 a CTA
    BLOCK: gl.constexpr = BLOCK2 // gl.num_ctas()
    G2: gl.constexpr = G22 // gl.num_ctas()
    GW: gl.constexpr = BLOCK + G2
    TB: gl.constexpr = t_smem.type.shape[2]
    MC: gl.constexpr = gl.num_ctas() > 1
    lay: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [4, 1], [1, 0], cga_layout=_cols(gl.num_ctas()))
    ks = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(1, lay))   # one index vector serves both blocks, as the tree's
    j = gl.arange(0, BLOCK2, layout=gl.SliceLayout(0, lay))    # cluster column j: CTA j // BLOCK's column j % BLOCK
    j2 = gl.arange(0, G22, layout=gl.SliceLayout(0, lay))
    it = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, pp, pn, start, end = _mc_tile(item, num_pp, num_n, offsets, order)
        # (NC pp + c) GW + j % BLOCK with c = j // BLOCK, written so that the compiler sees runs of BLOCK contiguous
        # columns (the copies' 16 bytes)
        cols = gl.num_ctas() * pp * GW + j + (j // BLOCK) * (GW - BLOCK)
        cols2 = gl.num_ctas() * pp * GW + BLOCK + j2 + (j2 // G2) * (GW - G2)
        mc = (cols < M)[None, :]
        mc2 = (cols2 < M)[None, :]
        # a step's row indices read a step ahead, as the tree's producer reads them
        rows = start + ks
        idx_next = gl.load(gather + rows, mask=rows < end, other=0)
        for r0 in range(start, end, BLOCK_K):
            mrow = r0 + ks < end
            idx = idx_next.to(gl.int64)
            rows = r0 + BLOCK_K + ks
            idx_next = gl.load(gather + rows, mask=rows < end, other=0)
            s = it % STAGES
            ph = ((it // STAGES) & 1) ^ 1                        # a new barrier passes phase 1
            mbarrier.wait(empty_x.index(s), ph)                  # this CTA's consumers are done with the stage
            mbarrier.wait(empty_w.index(s), ph)                  # and both CTAs' (waited in CTA 0 only)
            mbarrier.expect(ready_t.index(s), 2 * BLOCK_K * TB * 2)
            gl_tma.async_load(desc, [r0, pn * 2 * TB], ready_t.index(s), t_smem.index(2 * s), multicast=MC)
            gl_tma.async_load(desc, [r0, pn * 2 * TB + TB], ready_t.index(s), t_smem.index(2 * s + 1), multicast=MC)
            gl_async_copy.async_load(g_smem.index(s), X + idx[:, None] * stride_xt + cols[None, :],
                                     mask=mrow[:, None] & mc)
            gl_async_copy.async_load(g2_smem.index(s), X + idx[:, None] * stride_xt + cols2[None, :],
                                     mask=mrow[:, None] & mc2)
            gl_async_copy.mbarrier_arrive(ready_c.index(s), increment_count=False)
            it += 1
    # CTA 0 stays until both CTAs' consumers have let go of every stage, so that none of their arrivals on its
    # barriers comes after it has exited
    for i in range(STAGES):
        s = it % STAGES
        mbarrier.wait(empty_w.index(s), ((it // STAGES) & 1) ^ 1)
        it += 1


@gluon.jit
def _mc_consume(g_smem, g2_smem, t_smem, ready_t, ready_c, empty_x, empty_w, C, offsets, order, M, N, stride_ce,
                stride_cm, num_pp, num_n, n_items, H: gl.constexpr):
    STAGES: gl.constexpr = g_smem.type.shape[0]
    BLOCK2: gl.constexpr = g_smem.type.shape[2]
    G22: gl.constexpr = g2_smem.type.shape[2]
    BLOCK: gl.constexpr = BLOCK2 // gl.num_ctas()
    G2: gl.constexpr = G22 // gl.num_ctas()
    GW: gl.constexpr = BLOCK + G2
    BLOCK_K: gl.constexpr = g_smem.type.shape[1]
    TB: gl.constexpr = t_smem.type.shape[2]
    mma: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, TB, 16],
                                                  cga_layout=_rows(gl.num_ctas()))
    mma2: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, TB, 16],
                                                   cga_layout=_rows(gl.num_ctas()))
    it = 0
    for item in range(gl.program_id(0), n_items, gl.num_programs(0)):
        e, pp, pn, start, end = _mc_tile(item, num_pp, num_n, offsets, order)
        n_steps = (end - start + BLOCK_K - 1) // BLOCK_K
        acc = gl.zeros((BLOCK2, TB), gl.float32, mma)
        acc2 = gl.zeros((G22, TB), gl.float32, mma2)
        for jj in range(0, n_steps):
            s = it % STAGES
            mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
            mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
            fence_async_shared()   # cp.async wrote through the generic proxy; wgmma reads through the async one
            acc = warpgroup_mma(g_smem.index(s).permute((1, 0)), t_smem.index(2 * s + H), acc, is_async=True)
            acc2 = warpgroup_mma(g2_smem.index(s).permute((1, 0)), t_smem.index(2 * s + H), acc2, is_async=True)
            acc, acc2 = warpgroup_mma_wait(num_outstanding=2, deps=(acc, acc2))
            if jj > 0:
                prev = (it + STAGES - 1) % STAGES
                mbarrier.arrive(empty_x.index(prev), count=1)
                mbarrier.arrive(empty_w.index(prev), count=1)   # to CTA 0's copy
            it += 1
        acc, acc2 = warpgroup_mma_wait(num_outstanding=0, deps=(acc, acc2))
        if n_steps > 0:
            prev = (it + STAGES - 1) % STAGES
            mbarrier.arrive(empty_x.index(prev), count=1)
            mbarrier.arrive(empty_w.index(prev), count=1)
        j = gl.arange(0, BLOCK2, layout=gl.SliceLayout(1, mma))
        j2 = gl.arange(0, G22, layout=gl.SliceLayout(1, mma2))
        rows = gl.num_ctas() * pp * GW + j + (j // BLOCK) * (GW - BLOCK)
        rows2 = gl.num_ctas() * pp * GW + BLOCK + j2 + (j2 // G2) * (GW - G2)
        cols = pn * 2 * TB + H * TB + gl.arange(0, TB, layout=gl.SliceLayout(0, mma))
        cols2 = pn * 2 * TB + H * TB + gl.arange(0, TB, layout=gl.SliceLayout(0, mma2))
        base = C + e.to(gl.int64) * stride_ce
        gl.store(base + rows[:, None] * stride_cm + cols[None, :], acc,
                 mask=(rows < M)[:, None] & (cols < N)[None, :])
        gl.store(base + rows2[:, None] * stride_cm + cols2[None, :], acc2,
                 mask=(rows2 < M)[:, None] & (cols2 < N)[None, :])


@gluon.jit
def _mc_consumer0(g, g2, t, rt, rc, ex, ew, C, offsets, order, M, N, sce, scm, num_pp, num_n, n_items):
    _mc_consume(g, g2, t, rt, rc, ex, ew, C, offsets, order, M, N, sce, scm, num_pp, num_n, n_items, 0)


@gluon.jit
def _mc_consumer1(g, g2, t, rt, rc, ex, ew, C, offsets, order, M, N, sce, scm, num_pp, num_n, n_items):
    _mc_consume(g, g2, t, rt, rc, ex, ew, C, offsets, order, M, N, sce, scm, num_pp, num_n, n_items, 1)


@gluon.jit
def _wg_mc_kernel(X, dH, C, gather, offsets, order, M, N, E, stride_xt, stride_hr, stride_ce, stride_cm,
                  BLOCK_K: gl.constexpr, STAGES: gl.constexpr, CONSUMER_REGS: gl.constexpr,
                  PRODUCER_REGS: gl.constexpr):
    dt: gl.constexpr = X.dtype.element_ty
    BLOCK: gl.constexpr = 128
    G2: gl.constexpr = 64
    TB: gl.constexpr = 128      # dH's columns a consumer: the pair's N chunk is 2 TB
    NC: gl.constexpr = gl.num_ctas()
    g_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, NC * BLOCK], dt, cga_layout=_cols(NC))
    g2_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, NC * G2], dt, cga_layout=_cols(NC))
    t_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_K, TB], dt, cga_layout=_whole(NC))
    g_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, NC * BLOCK], g_layout)
    g2_smem = gl.allocate_shared_memory(dt, [STAGES, BLOCK_K, NC * G2], g2_layout)
    t_smem = gl.allocate_shared_memory(dt, [2 * STAGES, BLOCK_K, TB], t_layout)
    ready_t = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: dH's bytes landed
    ready_c = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: its gathered rows landed
    empty_x = mbarrier.allocate_mbarrier(batch=STAGES)                 # each CTA's: its consumers are done
    empty_w = mbarrier.allocate_mbarrier(batch=STAGES, two_ctas=NC > 1)  # the pair's, in CTA 0: all four are done
    for s in gl.static_range(STAGES):
        mbarrier.init(ready_t.index(s), count=1)
        mbarrier.init(ready_c.index(s), count=4 * 32)
        mbarrier.init(empty_x.index(s), count=2)
        mbarrier.init(empty_w.index(s), count=2)   # a CTA's count: the pair's barrier takes 2 x 2 arrivals
    gl.barrier(cluster=True)   # both CTAs' barriers initialised before any arrival or multicast reaches them
    rows = gl.maximum(gl.load(offsets + E), 1)
    desc = gl_tma.make_tensor_descriptor(dH, shape=[rows, N], strides=[stride_hr, 1], block_shape=[BLOCK_K, TB],
                                         layout=t_layout)
    num_pp = (M + NC * (BLOCK + G2) - 1) // (NC * (BLOCK + G2))   # cluster items a pair of row tiles (ctas=2)
    num_n = (N + 2 * TB - 1) // (2 * TB)
    n_items = E * num_pp * num_n
    cargs = (g_smem, g2_smem, t_smem, ready_t, ready_c, empty_x, empty_w, C, offsets, order, M, N, stride_ce,
             stride_cm, num_pp, num_n, n_items)
    pargs = (desc, g_smem, g2_smem, t_smem, ready_t, ready_c, empty_x, empty_w, X, gather, offsets, order, M,
             stride_xt, num_pp, num_n, n_items)
    gl.warp_specialize([(_mc_consumer0, cargs), (_mc_consumer1, cargs), (_mc_produce, pargs)], [4, 4],
                       [CONSUMER_REGS, PRODUCER_REGS])


MC_CONFIG = dict(BLOCK_K=64, STAGES=4, CONSUMER_REGS=232, PRODUCER_REGS=48)   # the tree's wide fp32 config


def wg_mc(x, dH, r, c=None, ctas=2, clusters=None, order=None):
    """c (E, d, 2n) fp32 = sonic_kernels.wgrad(x, dH, r, gather_a=True, ...) by _wg_mc_kernel on clusters of ctas CTAs
    (1: the same kernel, dH loaded by each CTA)."""
    E = r.offsets.numel() - 1
    d, N = x.shape[1], dH.shape[1]
    c = torch.empty(E, d, N, device=x.device, dtype=torch.float32) if c is None else c
    order = sk.expert_order(r.offsets) if order is None else order
    sk._set_allocator()
    items = E * sk.cdiv(d, ctas * 192) * sk.cdiv(N, 256)
    if clusters is None:
        clusters = min(items, torch.cuda.get_device_properties(x.device).multi_processor_count // ctas)
    _wg_mc_kernel[(clusters,)](x, dH, c, r.gather_idx, r.offsets, order, d, N, E, x.stride(0), dH.stride(0),
                               c.stride(0), c.stride(1), num_warps=4, num_ctas=ctas, **MC_CONFIG)
    return c


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
    if sys.argv[1] == "compile":   # sm_90 on a machine with no GPU
        from triton.backends.compiler import GPUTarget
        from triton.experimental.gluon._runtime import GluonASTSource
        sig = dict(X="*bf16", dH="*bf16", C="*fp32", gather="*i32", offsets="*i32", order="*i32", M="i32", N="i32",
                   E="i32", stride_xt="i32", stride_hr="i32", stride_ce="i32", stride_cm="i32", BLOCK_K="constexpr",
                   STAGES="constexpr", CONSUMER_REGS="constexpr", PRODUCER_REGS="constexpr")
        for ctas in (2, 1):
            attrs = {(i,): [["tt.divisibility", 16]] for i in (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12)}
            src = GluonASTSource(_wg_mc_kernel, sig, constexprs={(13 + i,): v for i, v in enumerate(MC_CONFIG.values())},
                                 attrs=attrs)
            k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4, num_ctas=ctas))
            import pathlib, subprocess, tempfile
            with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                f.write(k.asm["cubin"])
                f.flush()
                res = subprocess.run([str(pathlib.Path(triton.__file__).parent / "backends/nvidia/bin/cuobjdump"),
                                      "-res-usage", f.name], capture_output=True, text=True).stdout
            print("ctas", ctas, "compiled; shared", k.metadata.shared, "multicast lines",
                  sum("multicast" in l for l in k.asm["ptx"].splitlines()), [l.strip() for l in res.splitlines()
                                                                             if "REG" in l], flush=True)
    elif sys.argv[1] == "check":
        torch.manual_seed(0)
        for (T, d, n, E, K) in [(300, 128, 128, 4, 2), (700, 320, 160, 6, 2), (2049, 512, 256, 32, 8),
                                (777, 1536, 384, 8, 2), (999, 4096, 256, 16, 4)]:
            r = routing(T, E, K, empty_last=True)
            x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
            dH = torch.randn(T * K, 2 * n, device="cuda", dtype=torch.bfloat16)
            gi, off = r.gather_idx.long(), r.offsets.tolist()
            want = torch.stack([x.double()[gi[off[e]:off[e + 1]]].T @ dH.double()[off[e]:off[e + 1]] for e in range(E)])
            tree = sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32)
            for ctas, clusters in ((2, None), (2, 1), (2, 3), (1, None), (1, 2)):
                c = wg_mc(x, dH, r, ctas=ctas, clusters=clusters)
                torch.cuda.synchronize()
                print(f"check {(T, d, n, E, K)} ctas {ctas} clusters {clusters}: f64 {rel(c, want):.1e} tree "
                      f"{rel(c, tree):.1e} equal to the tree's {torch.equal(c, tree)}", flush=True)
    else:
        from triton.testing import do_bench
        for name, (T, d, n, E, K) in {"7B": (24576, 1536, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16),
                                      "120B": (32768, 4096, 2048, 64, 4)}.items():
            r = routing(T, E, K)
            R = T * K
            x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
            dH = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
            order = sk.expert_order(r.offsets)
            c = torch.empty(E, d, 2 * n, device="cuda", dtype=torch.float32)
            a_ = torch.randn(E, d, R // E, device="cuda", dtype=torch.bfloat16)
            b_ = torch.randn(E, R // E, 2 * n, device="cuda", dtype=torch.bfloat16)
            flops = 2 * R * 2 * n * d
            variants = (("tree fp32", lambda: sk.wgrad(x, dH, r, gather_a=True, gather_b=False,
                                                       out_dtype=torch.float32, order=order)),
                        ("multicast", lambda: wg_mc(x, dH, r, c, order=order)),
                        ("one CTA", lambda: wg_mc(x, dH, r, c, ctas=1, order=order)),
                        ("cuBLAS bmm bf16", lambda: torch.bmm(a_, b_)))
            for rnd in range(3):
                for vname, f in variants:
                    ms = do_bench(f, warmup=10, rep=300)
                    print(f"{name} {vname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
                    out.append(dict(shape=name, variant=vname, round=rnd, us=ms * 1e3))
            tree = sk.wgrad(x, dH, r, gather_a=True, gather_b=False, out_dtype=torch.float32, order=order)
            for ctas in (2, 1):
                wg_mc(x, dH, r, c, ctas=ctas, order=order)
                print(f"{name} ctas {ctas}: equal to the tree's: {torch.equal(c, tree)}", flush=True)
            del r, x, dH, c, a_, b_, tree
            torch.cuda.empty_cache()
        json.dump(out, open(sys.argv[2], "w"), indent=1)
