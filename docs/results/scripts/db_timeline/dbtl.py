"""Where an item's time goes in the Hopper dA' kernel: a copy of sonic_kernels whose four partitions (producer, the
two consumers, the epilogue warpgroup) record the SM's clock (%clock64) at fixed points of every item into a buffer,
one row of SLOTS a (program, item). The copy's outputs are compared bit for bit with the tree's kernel, and both are
timed (the clock reads and their stores are the only change). Per shape it prints medians over the middle items of
every program, in cycles and us (the clock's rate from %globaltimer read beside it).
usage: dbtl.py OUT.json [shape ...]"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

SLOTS, MAXI = 32, 160   # clock stamps a (program, item); items a program at most
src = open(os.environ.get("DBTL_SOURCE", sk.__file__)).read()   # default: the tree's sonic_kernels
def swap(old, new, within=None):
    # within: the name of the function whose text alone is searched
    global src
    lo, hi = 0, len(src)
    if within:
        lo = src.index(f"    def {within}(")
        hi = src.index("    @gluon.jit", lo)
    part = src[lo:hi]
    assert part.count(old) == 1, old
    src = src[:lo] + part.replace(old, new) + src[hi:]


def swap_first(*pairs):
    # the first (old, new) whose old is in the source: the epilogue before and after h left its ring
    for old, new in pairs:
        if src.count(old) == 1:
            return swap(old, new)
    raise AssertionError(pairs[0][0])

# the stamp: thread-uniform, so every thread of the partition stores the same value to the same address
swap("    @gluon.jit\n    def _ws_produce(",
     "    @gluon.jit\n    def _tl(TL, item, slot: gl.constexpr):\n"
     "        li = (item - gl.program_id(0)) // gl.num_programs(0)\n"
     "        t = gl.inline_asm_elementwise('mov.u64 $0, %clock64;', '=l', [], dtype=gl.int64, is_pure=False, pack=1)\n"
     f"        gl.store(TL + (gl.program_id(0) * {MAXI} + li) * {SLOTS} + slot, t)\n\n"
     "    @gluon.jit\n    def _tlg(TL, item, slot: gl.constexpr):\n"
     "        li = (item - gl.program_id(0)) // gl.num_programs(0)\n"
     "        t = gl.inline_asm_elementwise('mov.u64 $0, %globaltimer;', '=l', [], dtype=gl.int64, is_pure=False, pack=1)\n"
     f"        gl.store(TL + (gl.program_id(0) * {MAXI} + li) * {SLOTS} + slot, t)\n\n"
     "    @gluon.jit\n    def _clk():\n"
     "        return gl.inline_asm_elementwise('mov.u32 $0, %clock;', '=r', [], dtype=gl.int32, is_pure=False, pack=1)\n\n"
     "    @gluon.jit\n    def _tlv(TL, item, slot, v):\n"
     "        li = (item - gl.program_id(0)) // gl.num_programs(0)\n"
     f"        gl.store(TL + (gl.program_id(0) * {MAXI} + li) * {SLOTS} + slot, v)\n\n"
     "    @gluon.jit\n    def _ws_produce(")
# signatures and arguments
swap("        dH, Ap, dS_part,                                         # out:", "        dH, Ap, dS_part, TL,   # out:")
swap("                 offsets, D, num_n, n_items)\n        eargs", "                 offsets, D, num_n, n_items, TL)\n        eargs")
swap("                 N, R, stride_hr, stride_ar, num_n, n_items)\n", "                 N, R, stride_hr, stride_ar, num_n, n_items, TL)\n")
swap("                 N, D, stride_ot, num_n, n_items, False)", "                 N, D, stride_ot, num_n, n_items, False, TL)")
swap("N, D, stride_at, num_n, n_items, UP: gl.constexpr):", "N, D, stride_at, num_n, n_items, UP: gl.constexpr, TL):")
swap("offsets, D, num_n, n_items, HH: gl.constexpr):", "offsets, D, num_n, n_items, TL, HH: gl.constexpr):")
swap("                     N, R, stride_hr, stride_ar, num_n, n_items):", "                     N, R, stride_hr, stride_ar, num_n, n_items, TL):")
for h in "01":
    swap(f"    def _db_consumer{h}(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items):\n"
         f"        _db_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, {h})",
         f"    def _db_consumer{h}(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, TL):\n"
         f"        _db_consume(g, w, es, rt, rc, em, er, ee, te, tr, offsets, D, num_n, n_items, TL, {h})")
# producer: 0 item top, 1 first stage's slot free, 2 its copies issued (the gathered rows' indices in), 3 last stage issued
swap("""            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            # rows past the segment's end, and columns past d, are zeros (the masks): those rows are never stored""",
     """            _tl(TL, item, 0)
            e, row0, row_end, pn = _db_item(item, num_n, tile_expert, tile_row0, offsets)
            # rows past the segment's end, and columns past d, are zeros (the masks): those rows are never stored""")
swap("""                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)""",
     """                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                if k0 == 0:
                    _tl(TL, item, 1)
                mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)""")
swap("""                _ws_copy_gathered(g_smem, s, ready_c, a0, a1, m0, m1, k0 + ks, D)
                it += 1""",
     """                _ws_copy_gathered(g_smem, s, ready_c, a0, a1, m0, m1, k0 + ks, D)
                if k0 == 0:
                    _tl(TL, item, 2)
                it += 1
            _tl(TL, item, 3)""")
# consumers (HH 0: slots 4-8, HH 1: 9-13): item top, first stage in, MMAs done, hand-over free, handed over
swap("""            acc0 = gl.zeros((HALF, PART), gl.float32, mma)
            acc1 = gl.zeros((HALF, PART), gl.float32, mma)   # SPLIT == 1: never used, and compiled away""",
     """            _tl(TL, item, 4 + 5 * HH)
            acc0 = gl.zeros((HALF, PART), gl.float32, mma)
            acc1 = gl.zeros((HALF, PART), gl.float32, mma)   # SPLIT == 1: never used, and compiled away""", within="_db_consume")
swap("""                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                fence_async_shared()   # cp.async wrote""",
     """                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                if j == 0:
                    _tl(TL, item, 5 + 5 * HH)
                fence_async_shared()   # cp.async wrote""", within="_db_consume")
swap("""            acc0, acc1 = warpgroup_mma_wait(num_outstanding=0, deps=(acc0, acc1))
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            mbarrier.wait(epi_empty, (ti & 1) ^ 1)   # the epilogue has read the last item (a new barrier passes phase 1)""",
     """            acc0, acc1 = warpgroup_mma_wait(num_outstanding=0, deps=(acc0, acc1))
            _tl(TL, item, 6 + 5 * HH)
            mbarrier.arrive(empty.index((it + STAGES - 1) % STAGES), count=1)
            mbarrier.wait(epi_empty, (ti & 1) ^ 1)   # the epilogue has read the last item (a new barrier passes phase 1)
            _tl(TL, item, 7 + 5 * HH)""", within="_db_consume")
swap("""            _cta_barrier()                           # every thread's part stored before the hand-over
            mbarrier.arrive(epi_ready, count=1)
            ti += 1""",
     """            _cta_barrier()                           # every thread's part stored before the hand-over
            mbarrier.arrive(epi_ready, count=1)
            _tl(TL, item, 8 + 5 * HH)
            ti += 1""", within="_db_consume")
# epilogue: 14 item top (and 19 its globaltimer), 15 first h chunks asked for, 16 accumulators ready, 17 its work
# done, 18 handed back
swap("""            col0 = pn * SPLIT * PART
            # chunk j of a half: rows (j // SPLIT) * CHUNK on, part j % SPLIT""",
     """            _tl(TL, item, 14)
            _tlg(TL, item, 19)
            col0 = pn * SPLIT * PART
            # chunk j of a half: rows (j // SPLIT) * CHUNK on, part j % SPLIT""")
swap("""            mbarrier.wait(epi_ready, ti & 1)
            # the halves in a loop""", """            _tl(TL, item, 15)
            mbarrier.wait(epi_ready, ti & 1)
            _tl(TL, item, 16)
            # the halves in a loop""")
swap_first(("""            gl_async_copy.wait_group(0)   # the masked copies past the item have landed before the ring is reused
            _cta_barrier()   # every thread has read the buffer before the consumers may overwrite it
            mbarrier.arrive(epi_empty, count=1)
            ti += 1""", """            _tl(TL, item, 17)
            gl_async_copy.wait_group(0)   # the masked copies past the item have landed before the ring is reused
            _cta_barrier()   # every thread has read the buffer before the consumers may overwrite it
            mbarrier.arrive(epi_empty, count=1)
            _tl(TL, item, 18)
            ti += 1"""), ("""            _cta_barrier()   # every thread has read the buffer before the consumers may overwrite it
            mbarrier.arrive(epi_empty, count=1)
            ti += 1""", """            _tl(TL, item, 17)
            _cta_barrier()   # every thread has read the buffer before the consumers may overwrite it
            mbarrier.arrive(epi_empty, count=1)
            _tl(TL, item, 18)
            ti += 1"""))
swap("""    _down_bwd_hopper_kernel[(_n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part,""",
     """    _down_bwd_hopper_kernel[(_n_programs(dout.device, items),)](
        dout, w2, h, r.row_score, r.gather_idx, r.tile_expert, r.tile_row0, r.offsets, dH, Ap, dS_part, TLBUF[0],""")
swap("def _down_bwd_hopper(dout, w2, h, r: Routing, dH, Ap):", "TLBUF = [None]\n\n\ndef _down_bwd_hopper(dout, w2, h, r: Routing, dH, Ap):")
# cycles spent waiting, summed over an item: 20 + HH the consumer's on its stages' ready barriers (26 + HH the part
# of it after the TMA bytes were in, on the gathered rows' cp.async), 22 + HH on its
# MMAs (warpgroup_mma_wait), 24 the producer's on its free slots, 25 the epilogue's on h's copies
swap("""            acc1 = gl.zeros((HALF, PART), gl.float32, mma)   # SPLIT == 1: never used, and compiled away""",
     """            acc1 = gl.zeros((HALF, PART), gl.float32, mma)   # SPLIT == 1: never used, and compiled away
            wr = _clk() * 0
            wm = _clk() * 0
            wc = _clk() * 0""", within="_db_consume")
swap("""                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)""",
     """                c0 = _clk()
                mbarrier.wait(ready_t.index(s), (it // STAGES) & 1)
                c2 = _clk()
                mbarrier.wait(ready_c.index(s), (it // STAGES) & 1)
                wr += _clk() - c0
                wc += _clk() - c2""", within="_db_consume")
swap("""                acc0, acc1 = warpgroup_mma_wait(num_outstanding=SPLIT, deps=(acc0, acc1))""",
     """                c1 = _clk()
                acc0, acc1 = warpgroup_mma_wait(num_outstanding=SPLIT, deps=(acc0, acc1))
                wm += _clk() - c1""", within="_db_consume")
swap("""            _tl(TL, item, 6 + 5 * HH)""", """            _tl(TL, item, 6 + 5 * HH)
            _tlv(TL, item, 20 + HH, wr)
            _tlv(TL, item, 22 + HH, wm)
            _tlv(TL, item, 26 + HH, wc)""", within="_db_consume")
swap("""            _tl(TL, item, 0)
            e, row0, row_end, pn""", """            _tl(TL, item, 0)
            we = _clk() * 0
            e, row0, row_end, pn""")
swap("""                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                if k0 == 0:""", """                c0 = _clk()
                mbarrier.wait(empty.index(s), ((it // STAGES) & 1) ^ 1)   # a new barrier passes phase 1
                we += _clk() - c0
                if k0 == 0:""")
swap("""            _tl(TL, item, 3)""", """            _tl(TL, item, 3)
            _tlv(TL, item, 24, we)""")
if "gl_async_copy.wait_group(NBUF - 1)" in src:
    swap("""            _tl(TL, item, 14)""", """            _tl(TL, item, 14)
            wh = _clk() * 0""")
    swap("""                    gl_async_copy.wait_group(NBUF - 1)  # chunk j's copies have landed (each thread reads its own)""",
         """                    c0 = _clk()
                    gl_async_copy.wait_group(NBUF - 1)  # chunk j's copies have landed (each thread reads its own)
                    wh += _clk() - c0""")
    swap("""            _tl(TL, item, 17)""", """            _tl(TL, item, 17)
            _tlv(TL, item, 25, wh)""")
path = os.path.join(tempfile.mkdtemp(), "sk_dbtl.py")
open(path, "w").write(src.replace('"sonic::', '"sonicdbtl::').replace("torch.ops.sonic", "torch.ops.sonicdbtl"))
spec = importlib.util.spec_from_file_location("sk_dbtl", path)
tl_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tl_mod)


def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)


SPANS = {   # name: (from slot, to slot), both of one item; "next" spans run to the next item's slot
    "producer: item top -> first slot free": (0, 1),
    "producer: first slot free -> its copies issued": (1, 2),
    "producer: whole item issued": (0, 3),
    "consumer0: item top -> first stage in": (4, 5),
    "consumer0: first stage in -> MMAs done": (5, 6),
    "consumer0: MMAs done -> hand-over free": (6, 7),
    "consumer0: hand-over free -> handed over": (7, 8),
    "consumer1: MMAs done -> hand-over free": (11, 12),
    "consumer1: hand-over free -> handed over": (12, 13),
    "epilogue: item top -> first h asked": (14, 15),
    "epilogue: waits for the accumulators": (15, 16),
    "epilogue: its work": (16, 17),
    "epilogue: drain and hand back": (17, 18),
    "consumer0: item period": (4, "next"),
    "epilogue: item period": (14, "next"),
    "consumer0: waits on its stages (sum)": (20, None),
    "consumer1: waits on its stages (sum)": (21, None),
    "consumer0: of which on the gathered rows (sum)": (26, None),
    "consumer1: of which on the gathered rows (sum)": (27, None),
    "consumer0: waits on its MMAs (sum)": (22, None),
    "consumer1: waits on its MMAs (sum)": (23, None),
    "producer: waits on free slots (sum)": (24, None),
    "epilogue: waits on h's copies (sum)": (25, None),
}


def summarise(tl, n_items, n_prog):
    import statistics
    rows = []
    for p in range(n_prog):
        k = len(range(p, n_items, n_prog))
        rows.append(tl[p, :k])
    mid = [r[2:-2] for r in rows if r.shape[0] > 6]
    ns = torch.cat([r[:, 19] for r in mid]).double()
    cy = torch.cat([r[:, 14] for r in mid]).double()
    # the clock's rate from each program's first and last middle item
    rate = statistics.median([float((r[-1, 14] - r[0, 14]) / (r[-1, 19] - r[0, 19])) for r in mid])  # cycles / ns
    out = {"clock_GHz": rate}
    for name, (a, b) in SPANS.items():
        if b is None:
            v = torch.cat([r[:, a] for r in mid]).double()
        elif b == "next":
            v = torch.cat([(r[1:, a] - r[:-1, a]) for r in mid]).double()
        else:
            v = torch.cat([(r[:, b] - r[:, a]) for r in mid]).double()
        q = torch.quantile(v, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
        out[name] = dict(p10=q[0], median=q[1], p90=q[2], median_us=q[1] / rate / 1e3)
    return out


if __name__ == "__main__":
    SHAPES = {"1.4B": (40960, 768, 256, 128, 8), "7B": (24576, 1536, 256, 128, 8),
              "30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4)}
    pick = sys.argv[2:] or list(SHAPES)
    res = {}
    for name in pick:
        T, d, n, E, K = SHAPES[name]
        torch.manual_seed(0)
        r = routing(T, E, K)
        R = T * K
        dO = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
        h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        assert sk._use_hopper_down_bwd(dO, w2, h)
        outs = {}
        for vname, m in (("tree", sk), ("stamped", tl_mod)):
            dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
            tl_mod.TLBUF[0] = torch.zeros(sk._n_programs(dO.device, 10 ** 9), MAXI, SLOTS, device="cuda", dtype=torch.int64)
            dS = m._down_bwd_hopper(dO, w2, h, r, dH, Ap)
            torch.cuda.synchronize()
            outs[vname] = (dH, Ap, dS)
        same = all(torch.equal(a, b) for a, b in zip(outs["tree"], outs["stamped"]))
        n_prog = tl_mod.TLBUF[0].shape[0]
        tl = tl_mod.TLBUF[0].cpu()
        real = int((tl[:, :, 4] != 0).sum())
        assert real <= n_prog * MAXI
        s = summarise(tl, real, n_prog)
        dH, Ap = torch.empty_like(h), torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        times = {}
        for rnd in range(2):
            for vname, m in (("tree", sk), ("stamped", tl_mod)):
                ms = do_bench(lambda: m._down_bwd_hopper(dO, w2, h, r, dH, Ap), warmup=10, rep=100)
                times.setdefault(vname, []).append(ms * 1e3)
        print(f"== {name}: items {real} on {n_prog} programs; outputs bit-identical: {same}; us tree {times['tree']} "
              f"stamped {times['stamped']}; clock {s['clock_GHz']:.2f} GHz", flush=True)
        for k, v in s.items():
            if k != "clock_GHz":
                print(f"  {k:48s} median {v['median']:8.0f} cycles ({v['median_us']:6.2f} us)  p10 {v['p10']:8.0f}  p90 {v['p90']:8.0f}")
        res[name] = dict(items=real, programs=n_prog, bit_identical=same, us=times, spans=s)
        torch.save(tl[:, :, :28].clone(), os.path.join(os.path.dirname(sys.argv[1]), f"stamps_{name}.pt"))
        del r, dO, w2, h, outs, dH, Ap
        torch.cuda.empty_cache()
    json.dump(res, open(sys.argv[1], "w"), indent=1)
