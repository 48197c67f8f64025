# In one process: the whole layer with the Gluon grouped GEMM (HOPPER_GROUPED=None) and without (False), alternated
import torch, sonic_kernels
from triton.testing import do_bench
from moe import MoE
from model import GPTConfig
for name, T, d, n, E, K in [("120B", 32768, 4096, 2048, 64, 4), ("30B", 32768, 4096, 256, 256, 16), ("7B", 24576, 1536, 256, 128, 8)]:
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=d, n_head=8, n_expert=E, top_k=K, expert_size=n, moe_backend="sonic")
    moe = MoE(cfg).cuda().to(torch.bfloat16).train()
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    dout = torch.randn_like(x); params = list(moe.parameters())
    def fwd(): return moe(x)
    def fb():
        out = moe(x); torch.autograd.backward([out, moe.aux_loss], [dout, torch.ones_like(moe.aux_loss)])
    fl = T * K * n * d
    for r in range(3):
        for hg in (False, None):
            sonic_kernels.HOPPER_GROUPED = hg
            fb(); torch.cuda.synchronize()
            tf = do_bench(fwd, warmup=10, rep=100, grad_to_none=[x] + params)
            tfb = do_bench(fb, warmup=10, rep=150, grad_to_none=[x] + params)
            print(f"{name} round {r} {'gluon ' if hg is None else 'triton'}: fwd {6*fl/tf/1e9:.0f} bwd {12*fl/(tfb-tf)/1e9:.0f} f+b {18*fl/tfb/1e9:.0f} TFLOPS  {tf:.2f}/{tfb-tf:.2f}/{tfb:.2f} ms", flush=True)
    del moe, x, dout, params
