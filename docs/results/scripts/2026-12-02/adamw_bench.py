"""TritonAdamW's step on h200_moe's parameters: fp32 against bf16 moments, the clip folded in."""
import torch
from model import GPT, GPTConfig, TritonAdamW
torch.manual_seed(0)
cfg = GPTConfig(n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8, expert_size=256, block_size=2048,
                vocab_size=256, moe_backend='sonic')
model = GPT(cfg).cuda()
n = sum(p.numel() for p in model.parameters())
print(f"parameters {n / 1e9:.3f}B")
for p in model.parameters():
    p.grad = torch.randn_like(p) * 1e-3
groups = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95), 'cuda').param_groups
for dtype in (torch.float32, torch.bfloat16, torch.float32, torch.bfloat16):
    opt = TritonAdamW([{k: v for k, v in g.items()} for g in groups], lr=3e-4, betas=(0.9, 0.95), state_dtype=dtype)
    opt.grad_scale = torch.tensor(1.5, device='cuda')
    state0 = {id(p): p.detach().clone() for p in model.parameters()}
    for _ in range(3):
        opt.step()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        e0.record(); opt.step(); e1.record(); torch.cuda.synchronize(); times.append(e0.elapsed_time(e1))
    times.sort()
    state_bytes = sum(t.numel() * t.element_size() for s in opt.state.values() for k, t in s.items() if k != 'step')
    moved = n * (4 + 4 + 4) + 2 * state_bytes  # p read+write, grad read; states read+write
    print(f"states {str(dtype):15s} step min {times[0]:.2f} median {times[5]:.2f} ms; {moved / times[0] / 1e9:.2f} TB/s "
          f"over {moved / 1e9:.1f} GB; state {state_bytes / 2**30:.2f} GiB")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(state0[id(p)])
    del opt
    torch.cuda.empty_cache()
