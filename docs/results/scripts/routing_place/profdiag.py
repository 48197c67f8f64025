"""Which CPU op the profiler links each kernel of a sonic MoE layer's forward+backward to: for bench.py's
profile, whose parts take a kernel from the op that launched it (the routing's Triton kernels did not
show under 'moe routing' on the H200)."""
import torch
from torch.autograd.profiler import record_function
from torch.profiler import profile, ProfilerActivity
from model import GPTConfig
import moe, sonic_kernels as sk

cfg = GPTConfig(n_embd=1536, n_head=12, n_expert=128, top_k=8, expert_size=256, moe_backend='sonic')
layer = moe.MoE(cfg).cuda().to(torch.bfloat16).train()
x = torch.randn(16384, 1536, device='cuda', dtype=torch.bfloat16, requires_grad=True)
orig = sk.routing_metadata
def marked(*a, **k):
    with record_function('bench:moe routing'):
        return orig(*a, **k)
sk.routing_metadata = marked
def step():
    with record_function('bench:moe layer'):
        out = layer(x)
    (out.float().square().mean() + layer.aux_loss).backward()
for _ in range(3):
    step()
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
    step(); torch.cuda.synchronize()
ev = p.events()
def chain(e):
    names = []
    while e is not None:
        names.append(e.name[:40]); e = e.cpu_parent
    return ' < '.join(names)
linked = {}
for e in ev:
    if e.device_type == torch.autograd.DeviceType.CPU:
        for k in e.kernels:
            linked.setdefault(k.name, []).append(chain(e))
for e in sorted((e for e in ev if e.device_type == torch.autograd.DeviceType.CUDA), key=lambda e: e.time_range.start):
    n = e.name
    print(f"{n[:50]:50s} {e.time_range.elapsed_us():8.1f} us  user_ann={getattr(e, 'is_user_annotation', None)}  "
          f"linked: {linked.get(n, ['NONE'])[0][:160]}")
launch = [e for e in ev if 'aunch' in e.name]
print('launch-like CPU events:', sorted({e.name for e in launch}))
for e in launch[:60]:
    print('  ', e.name, '|', chain(e)[:200], '| kernels', [k.name[:30] for k in e.kernels])
