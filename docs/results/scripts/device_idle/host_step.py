"""h200_moe's compiled training step as train.py runs it (bf16 autocast, expert copies written by AdamW, the
clip's norm from the weight-gradient kernels, the clip inside TritonAdamW), on random tokens: its pace back to
back, and the host's time to enqueue each piece of it while the device is held busy (torch.cuda._sleep), so
that nothing the host does waits for the device. If the host's sum is near the step's pace, the step is bound
by the host. host_step.log came from its first form (the pace and the held enqueue only).
The optimizer part needs .gpu/sk_before/old_adamw.py (adamw_call.sh says how it is made)."""
import gc, os, sys, time, statistics, warnings, torch
sys.path.insert(0, os.getcwd())
import sonic_kernels
from model import GPT, GPTConfig, clipped_fused_step
from torch.profiler import profile, ProfilerActivity

torch.manual_seed(0)
cfg = GPTConfig(block_size=2048, vocab_size=256, n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8,
                expert_size=256, moe_backend="sonic")
raw = GPT(cfg).cuda()
opt = raw.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cuda")
print("optimizer", type(opt).__name__, "copies", raw.keep_expert_copies(opt, torch.bfloat16),
      "tensors", sum(len(g["params"]) for g in opt.param_groups), flush=True)
squares = sonic_kernels.GRAD_SQUARES = sonic_kernels.GradSquares()
net = torch.compile(raw)
data = torch.randint(256, (16, 8, 2049), device="cuda")
it = [0]

def pieces(hold=False):
    # hold: before each piece, wait for the device, then hold it busy for ~2 s, so that the host's time to
    # enqueue the piece is its own (unless the launch queue fills: then a piece takes ~2000 ms)
    out = []
    def mark():
        if hold:
            torch.cuda.synchronize()
            torch.cuda._sleep(int(4e9))
        out.append(time.perf_counter())
    def done():
        out[-1] = (time.perf_counter() - out[-1]) * 1e3
    mark()
    opt.refresh_copies()
    xy = data[it[0] % 16]; it[0] += 1
    X, Y = xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        _, loss = net(X, Y)
    done(); mark()
    loss.backward()
    done(); mark()
    clipped_fused_step(opt, 1.0, params=raw.parameters(), squares=squares)
    done(); mark()
    opt.zero_grad(set_to_none=True)
    done()
    return out

for _ in range(6):
    pieces()
torch.cuda.synchronize()
print("taken from the kernels:", squares.taken, flush=True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torch.cuda.set_sync_debug_mode("warn")
    pieces()
    torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
syncs = [str(w.message)[:160] for w in caught if "synchroniz" in str(w.message).lower()]
print(f"synchronizing calls in one step (torch.cuda.set_sync_debug_mode): {len(syncs)}", *syncs[:5], sep="\n  ", flush=True)

def back_to_back(label, n=20):
    torch.cuda.synchronize(); t0 = time.perf_counter(); starts = []
    for _ in range(n):
        starts.append(time.perf_counter())
        pieces()
    starts.append(time.perf_counter())
    torch.cuda.synchronize()
    gaps = [(b - a) * 1e3 for a, b in zip(starts, starts[1:])]
    print(f"{label}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms/step back to back; the host's time a step "
          f"median {statistics.median(gaps):.2f}, max {max(gaps):.2f} ms", flush=True)

for rep in range(2):
    back_to_back("gc on")
gc.collect(); gc.freeze(); gc.disable()
for rep in range(2):
    back_to_back("gc off (frozen)")
gc.enable()
for rep in range(4):
    fwd, bwd, step, zero = pieces(hold=True)
    torch.cuda.synchronize()
    print(f"host enqueue, device held: forward {fwd:.2f} backward {bwd:.2f} optimizer {step:.2f} zero_grad {zero:.2f} "
          f"= {fwd + bwd + step + zero:.2f} ms", flush=True)

# the optimizer alone, the device held: the one-launch op against a launch a tensor (the kernel before it), on
# gradients of the parameters' shapes; host time to enqueue, then the device's time for the update
sys.path.insert(0, os.path.join(os.getcwd(), ".gpu", "sk_before"))
import triton
from old_adamw import _adamw_kernel as old_kernel
params = [p for g in opt.param_groups for p in g["params"]]
grads = [torch.randn_like(p) * 1e-3 for p in params]
ms = [torch.zeros_like(p) for p in params]; vs = [torch.zeros_like(p) for p in params]
steps = [torch.zeros((), device="cuda") for p in params]
copies = [opt.copies.get(p) for p in params]
scale = torch.ones((), device="cuda")
def one_launch():
    sonic_kernels.adamw_(params, grads, ms, vs, steps, 3e-4, 0.9, 0.95, 1e-8, 0.1, scale, copies)
def per_tensor():
    torch._foreach_add_(steps, 1)
    for p, g, m, v, st, c in zip(params, grads, ms, vs, steps, copies):
        old_kernel[(triton.cdiv(p.numel(), 1024),)](p, g, m, v, st, scale, p if c is None else c, p.numel(), 3e-4, 0.95,
                                                    0.1, 0.05, 1e-8, 0.1, HAS_SCALE=True, HAS_COPY=c is not None,
                                                    BLOCK=1024, num_warps=4)
with torch.no_grad():
    for fn in (one_launch, per_tensor):
        fn(); fn()
    for rep in range(3):
        for name, fn in (("one launch a dtype", one_launch), ("a launch a tensor", per_tensor)):
            torch.cuda.synchronize(); torch.cuda._sleep(int(2e9))
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter(); e0.record(); fn(); e1.record(); host = (time.perf_counter() - t0) * 1e3
            torch.cuda.synchronize()
            print(f"AdamW over {len(params)} tensors, {name}: host {host:.2f} ms, device {e0.elapsed_time(e1):.2f} ms", flush=True)

with profile(activities=[ProfilerActivity.CUDA]) as prof:
    pieces(); torch.cuda.synchronize()
names = [e.name for e in prof.events() if e.device_type.name == "CUDA"]
print(f"device events a step: {len(names)}", flush=True)
