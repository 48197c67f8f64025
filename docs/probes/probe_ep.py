# Probe for docs/PERF.md "Open" (session 6, not yet run on GPUs): where an EP=2 step's extra time
# goes. On two H200s EP=2 ran configs/h200_moe.py at 206.5 ms/iter against DDP's 129.5, for the same
# compute per rank. This builds that model on every rank, splits its experts (as train.py does with
# --ep_size=2), runs a few forward+backward steps on random tokens under bf16 autocast, and
# prints rank 0's step time and its costliest CUDA kernels and host ops (torch.profiler).
# Run from the repo root, on two GPUs (NVLink multicast off, as the device README says):
#   NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 torchrun --standalone --nproc_per_node=2 docs/probes/probe_ep.py
# On a CPU, `torchrun --standalone --nproc_per_node=2 docs/probes/probe_ep.py cpu` checks its logic
# with gloo, a tiny model and the torch backend.
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import time
import torch
import torch.distributed as dist
from model import GPT, GPTConfig

cpu = sys.argv[1:] == ['cpu']
dist.init_process_group('gloo' if cpu else 'nccl')
rank = dist.get_rank()
dev = 'cpu' if cpu else f'cuda:{int(os.environ["LOCAL_RANK"])}'
if not cpu:
    torch.cuda.set_device(dev)
if cpu:
    cfg = GPTConfig(block_size=32, vocab_size=256, n_layer=2, n_head=2, n_embd=32, n_expert=4, top_k=2,
                    expert_size=16, moe_backend='torch')
    B = 4
else:  # configs/h200_moe.py
    cfg = GPTConfig(block_size=2048, vocab_size=256, n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8,
                    expert_size=256, moe_backend='sonic')
    B = 8
torch.manual_seed(0)
model = GPT(cfg).to(dev)
model.setup_expert_parallel(dist.group.WORLD)
gen = torch.Generator().manual_seed(rank)
x = torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=gen).to(dev)
y = torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=gen).to(dev)


def step():
    model.zero_grad(set_to_none=True)
    with torch.autocast('cpu' if cpu else 'cuda', dtype=torch.bfloat16):
        _, loss = model(x, y)
    loss.backward()  # the gradient all-reduce of the replicated weights is left out: DDP pays it too


def sync():
    if not cpu:
        torch.cuda.synchronize()
    dist.barrier()


for _ in range(3):
    step()
sync()
t0 = time.perf_counter()
for _ in range(5):
    step()
sync()
if rank == 0:
    print(f"EP=2 forward+backward: {(time.perf_counter() - t0) / 5 * 1e3:.1f} ms a step", flush=True)
acts = [torch.profiler.ProfilerActivity.CPU] + ([] if cpu else [torch.profiler.ProfilerActivity.CUDA])
with torch.profiler.profile(activities=acts) as prof:
    for _ in range(3):
        step()
    sync()
if rank == 0:
    key = 'cpu_time_total' if cpu else 'cuda_time_total'
    print(prof.key_averages().table(sort_by=key, row_limit=20), flush=True)
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=12), flush=True)
dist.barrier()
dist.destroy_process_group()
