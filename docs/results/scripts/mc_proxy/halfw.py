"""What W's blocks shared over a 2-CTA cluster (TMA multicast) could give the up-projection and dA' at the d = 4096
shapes, measured by proxy: a copy of sonic_kernels whose producers load only half of each ring stage's weight bytes
(the up-projection its gate block, not the up block; dA' its first 128-column part of W2, not the second), the
barriers expecting those bytes, the MMAs still reading both buffers. That is the weight traffic a CTA would pull from
L2 if its cluster peer fetched the other half for both; the outputs are wrong (the second buffer holds stale bytes),
so only the time is read. Alternating rounds, each kernel alone (a part), beside cuBLAS on a dense GEMM of its size.
usage: halfw.py OUT.json"""
import importlib.util, json, os, sys, tempfile
import torch
from triton.testing import do_bench
import sonic_kernels as sk

src = open(sk.__file__).read()
def swap(old, new):
    global src
    assert src.count(old) == 1, old
    src = src.replace(old, new)
swap("mbarrier.expect(ready_t.index(s), TILES * TILE_BYTES)", "mbarrier.expect(ready_t.index(s), (TILES - 1) * TILE_BYTES)")
swap("                    _tma_load(w_desc, [w_row + k0, N + pn * BLOCK_N], ready_t.index(s), w_smem.index(2 * s + 1))\n", "")
swap("                    for p in gl.static_range(TILES):\n                        _tma_load(w_desc, [w_row + p * PART, k0]",
     "                    for p in gl.static_range(TILES - 1):\n                        _tma_load(w_desc, [w_row + p * PART, k0]")
path = os.path.join(tempfile.mkdtemp(), "sk_halfw.py")
open(path, "w").write(src.replace('"sonic::', '"sonichalfw::').replace("torch.ops.sonic", "torch.ops.sonichalfw"))
spec = importlib.util.spec_from_file_location("sk_halfw", path)
hw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hw)

def routing(T, E, K):
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    return sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(),
                               torch.softmax(top, -1).flatten(), T, E)

if __name__ == "__main__":   # clocks.py imports the copy and routing() from here
    SHAPES = {"30B": (32768, 4096, 256, 256, 16), "120B": (32768, 4096, 2048, 64, 4), "7B": (24576, 1536, 256, 128, 8)}
    out = []
    for name, (T, d, n, E, K) in SHAPES.items():
        r = routing(T, E, K)
        R = T * K
        x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
        w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
        w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
        h = torch.randn(R, 2 * n, device="cuda", dtype=torch.bfloat16)
        a = torch.empty(R, n, device="cuda", dtype=torch.bfloat16)
        dH = torch.empty_like(h)
        Ap = torch.empty_like(a)
        assert sk._use_hopper_up(x, w1) and sk._use_hopper_down_bwd(x, w2, h)
        jobs = {"up": (2 * R * 2 * n * d, lambda m: m._up_hopper(x, w1, r, h, a), (R, d, 2 * n)),
                "dA'": (2 * R * n * d, lambda m: m._down_bwd_hopper(x, w2, h, r, dH, Ap), (R, d, n))}
        for job, (flops, call, (M, Kd, N)) in jobs.items():
            for rnd in range(3):
                for vname, m in (("whole W", sk), ("half W", hw)):
                    ms = do_bench(lambda: call(m), warmup=10, rep=200)
                    print(f"{name} {job} {vname} round {rnd}: {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
                    out.append(dict(shape=name, kernel=job, variant=vname, round=rnd, us=ms * 1e3))
            A_ = torch.randn(M, Kd, device="cuda", dtype=torch.bfloat16)
            B_ = torch.randn(Kd, N, device="cuda", dtype=torch.bfloat16)
            ms = do_bench(lambda: torch.mm(A_, B_), warmup=10, rep=200)
            print(f"{name} {job} cuBLAS dense ({M}x{Kd}) @ ({Kd}x{N}) (part): {ms * 1e3:7.1f} us {flops / ms / 1e9:5.0f} TFLOPS", flush=True)
            out.append(dict(shape=name, kernel=job, variant="cuBLAS", us=ms * 1e3))
            del A_, B_
        del r, x, w1, w2, h, a, dH, Ap
        torch.cuda.empty_cache()
    json.dump(out, open(sys.argv[1], "w"), indent=1)
