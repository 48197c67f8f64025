# GPU probe for docs/PERF.md (session 7): where a training step's time goes, top-K against token
# rounding. Builds bench.py's train-mode GPT at configs/h200_moe.py's widths (E from argv, default
# 256), runs 4 warm-up steps, then profiles 2 steps per routing and prints the CUDA kernels whose
# total time differs most between the routings (ms per step).
# Run from the repo root:  python docs/probes/probe_step.py [E]
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import collections
import torch
from model import GPT, GPTConfig

E = int(sys.argv[1]) if len(sys.argv) > 1 else 256
B, L = 8, 2048
per = {}
for route in ('topk', 'rounding'):
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=L, vocab_size=50304, n_layer=12, n_head=12, n_embd=1536, n_expert=E, top_k=8,
                    expert_size=256, moe_backend='sonic', token_rounding=route == 'rounding')
    model = GPT(cfg).cuda()
    opt = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95), 'cuda')
    xy = torch.randint(50304, (B, L + 1), device='cuda')

    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16):
            _, loss = model(xy[:, :-1].contiguous(), xy[:, 1:].contiguous())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(4):
        step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            step()
        torch.cuda.synchronize()
    per[route] = collections.Counter()
    for ev in prof.key_averages():
        per[route][ev.key[:90]] += ev.self_device_time_total / 2e3   # ms per step
    print(f"{route}: {sum(per[route].values()):.1f} ms of kernels per step", flush=True)
    del model, opt
    torch.cuda.empty_cache()
keys = set(per['topk']) | set(per['rounding'])
rows = sorted(keys, key=lambda k: -abs(per['rounding'][k] - per['topk'][k]))
print(f"{'kernel':92s} {'top-K':>8s} {'rounded':>8s} {'diff':>8s}")
for k in rows[:30]:
    print(f"{k:92s} {per['topk'][k]:8.2f} {per['rounding'][k]:8.2f} {per['rounding'][k] - per['topk'][k]:+8.2f}")
