"""A 2-CTA cluster's barriers and multicast TMA load in Triton's Gluon 3.9, whose two-CTA barrier takes both CTAs'
arrivals in CTA 0 (3.7.1 has allocate_mbarrier(two_ctas=True) too, but each CTA arrives on its own copy there; 3.6 has
no multicast). A one-tile kernel: W's
block multicast to both CTAs (a broadcast CGA layout), a per-CTA barrier for its bytes, and a two-CTA barrier that both
CTAs arrive on; then each CTA stores its own copy as its slice of a (2, 64, 128) tensor split over the pair.
usage: python two_cta_barrier.py           compile for sm_90 (no GPU needed) and print the PTX lines that say who
                                           issues the copy, where each CTA arrives and who waits
       python two_cta_barrier.py run       on a Hopper GPU: launch it and check both CTAs' copies against W"""
import re, sys
import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma


@gluon.jit
def one_tile(W, out):
    lay: gl.constexpr = gl.NVMMASharedLayout.get_default_for([64, 128], gl.bfloat16, cga_layout=[[0, 0]])   # both CTAs hold it
    desc = tma.make_tensor_descriptor(W, shape=[1024, 1024], strides=[1024, 1], block_shape=[64, 128], layout=lay)
    smem = gl.allocate_shared_memory(gl.bfloat16, [64, 128], lay)
    ready = mbarrier.allocate_mbarrier()                 # each CTA's own: W's bytes landed here
    mbarrier.init(ready, count=1)
    done = mbarrier.allocate_mbarrier(two_ctas=True)     # one for the pair: both CTAs are done with the tile
    mbarrier.init(done, count=1)
    gl.barrier(cluster=True)                             # both CTAs' barriers initialised before any remote use
    mbarrier.expect(ready, 64 * 128 * 2)
    tma.async_load(desc, [0, 0], ready, smem, multicast=True)
    mbarrier.wait(ready, 0)
    b3: gl.constexpr = gl.BlockedLayout([1, 1, 8], [1, 4, 8], [1, 4, 1], [2, 1, 0], cga_layout=[[0, 0, 0]])
    sl: gl.constexpr = gl.BlockedLayout([1, 1, 8], [1, 4, 8], [1, 4, 1], [2, 1, 0], cga_layout=[[1, 0, 0]])
    v = smem.load(gl.SliceLayout(0, b3))
    pair_v = gl.convert_layout(gl.expand_dims(v, 0) + gl.zeros([2, 64, 128], gl.bfloat16, b3), sl)   # CTA c keeps slice c
    mbarrier.arrive(done)
    mbarrier.wait(done, 0)
    c = gl.arange(0, 2, layout=gl.SliceLayout(1, gl.SliceLayout(2, sl)))[:, None, None]
    r = gl.arange(0, 64, layout=gl.SliceLayout(0, gl.SliceLayout(2, sl)))[None, :, None]
    k = gl.arange(0, 128, layout=gl.SliceLayout(0, gl.SliceLayout(1, sl)))[None, None, :]
    gl.store(out + c * 8192 + r * 128 + k, pair_v)


if __name__ == "__main__":
    print("triton", triton.__version__)
    if sys.argv[1:] == ["run"]:
        triton.set_allocator(lambda size, alignment, stream: torch.empty(size, device="cuda", dtype=torch.int8))
        W = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
        out = torch.full((2, 64, 128), float("nan"), device="cuda", dtype=torch.bfloat16)
        one_tile[(1,)](W, out, num_warps=4, num_ctas=2)
        torch.cuda.synchronize()
        for cta in range(2):
            print(f"CTA {cta}'s copy equals W's block: {torch.equal(out[cta], W[:64, :128])}")
    else:
        from triton.backends.compiler import GPUTarget
        from triton.experimental.gluon._runtime import GluonASTSource
        src = GluonASTSource(one_tile, signature={"W": "*bf16", "out": "*bf16"}, constexprs={})
        ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4, num_ctas=2)).asm["ptx"]
        for line in ptx.splitlines():
            if re.search(r"reqnctapercluster|cluster_ctarank|setp.*%r15|mbarrier\.(init|arrive)|multicast::cluster|skipWait|"
                         r"and\.b32.*-16777232", line):
                print(line.strip())
        stores = [l.split()[0] for l in ptx.splitlines() if "st.global" in l]
        print(len(stores), "st.global, predicated:", sum(s.startswith("@") for s in stores))
