"""Whether AdamW's step, run per block on a side stream while the next forward runs, takes time off
h200_moe's step. Variants: whole-model compile (train.py today), per-block compile, per-block +
overlap (same priority), per-block + overlap with the training on a high-priority stream."""
import os, sys, time, math
import torch
sys.path.insert(0, os.getcwd())
from model import GPT, GPTConfig, clipped_fused_step
import sonic_kernels

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
dev = 'cuda'
B = int(os.environ.get('B', 8)); T = 2048; V = 256
STEPS = int(os.environ.get('STEPS', 25)); WARM = 6
VARIANTS = os.environ.get('VARIANTS', 'whole,blocks,overlap,overlap_hp').split(',')
cfg = GPTConfig(n_layer=12, n_head=12, n_embd=1536, n_expert=128, top_k=8, expert_size=256, moe_backend='sonic',
                block_size=T, vocab_size=V, dropout=0.0, bias=False)
torch.manual_seed(0)
model = GPT(cfg).to(dev)
opt = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95), 'cuda')
assert model.keep_expert_copies(opt, torch.bfloat16)
ctx = torch.amp.autocast(device_type='cuda', dtype=torch.bfloat16)
gen = torch.Generator(device=dev); gen.manual_seed(1)
batches = [torch.randint(0, V, (B, T + 1), device=dev, generator=gen) for _ in range(8)]
params = [p for p in model.parameters() if p.requires_grad]

# optimizer groups in the order the next forward reads them: embeddings, ln_f (tied head), then block by block
blocks = list(model.transformer.h)
block_of = {}
for i, b in enumerate(blocks):
    for p in b.parameters():
        block_of[p] = i
def group_params(gi):  # gi = -1: the rest
    return [p for p in params if block_of.get(p, -1) == gi]
groups = [group_params(-1)] + [group_params(i) for i in range(len(blocks))]
assert sum(len(g) for g in groups) == len(params)

def opt_step_subset(ps, grad_scale):
    """TritonAdamW.step restricted to ps (state already made by a first full step)."""
    for group in opt.param_groups:
        sel = [p for p in group['params'] if p.grad is not None and any(p is q for q in ps)]
        if not sel:
            continue
        st = [opt.state[p] for p in sel]
        sonic_kernels.adamw_(sel, [p.grad for p in sel], [s['exp_avg'] for s in st], [s['exp_avg_sq'] for s in st],
                             [s['step'] for s in st], float(group['lr']), *map(float, group['betas']),
                             float(group['eps']), float(group['weight_decay']), grad_scale,
                             [opt.copies.get(p) for p in sel])

side = None
events = None
def pre_hook(i):
    def hook(mod, args):
        if events is not None:
            torch.cuda.current_stream().wait_event(events[i + 1])
    return hook
for i, b in enumerate(blocks):
    b.register_forward_pre_hook(pre_hook(i))

def forward_loss(m, xy):
    with ctx:
        _, loss = m(xy[:, :-1].contiguous(), xy[:, 1:].contiguous())
    return loss

def step_seq(m, xy):
    loss = forward_loss(m, xy)
    loss.backward()
    clipped_fused_step(opt, 1.0, params=params)
    opt.zero_grad(set_to_none=True)
    return loss

def step_overlap(m, xy, main):
    """The update of the previous step is in flight on `side`; this forward waits block by block."""
    global events
    loss = forward_loss(m, xy)
    main.wait_stream(side)               # every update done: the gradients can go
    opt.zero_grad(set_to_none=True)
    events = None
    loss.backward()
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    grad_scale = ((norm.float() + 1e-6) / 1.0).clamp(min=1.0)
    side.wait_stream(main)
    evs = []
    with torch.cuda.stream(side):
        for g in groups:
            opt_step_subset(g, grad_scale)
            ev = torch.cuda.Event(); ev.record(side); evs.append(ev)
    events = evs
    return loss

def run(name, m, overlap=False, hp=False):
    global side, events
    main = torch.cuda.Stream(priority=-1) if hp else torch.cuda.current_stream()
    side = torch.cuda.Stream(priority=0)
    events = None
    with torch.cuda.stream(main):
        t0 = time.time()
        for i in range(WARM):
            l = step_overlap(m, batches[i % 8], main) if overlap else step_seq(m, batches[i % 8])
        torch.cuda.synchronize()
        tw = time.time() - t0
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(); t0 = time.time(); s.record()
        losses = []
        for i in range(STEPS):
            l = step_overlap(m, batches[i % 8], main) if overlap else step_seq(m, batches[i % 8])
            losses.append(l.detach())
        e.record(); torch.cuda.synchronize()
        if overlap:
            main.wait_stream(side); opt.zero_grad(set_to_none=True); events = None
            torch.cuda.synchronize()
    ms = s.elapsed_time(e) / STEPS
    print(f"{name:12s} {ms:7.2f} ms/step (wall {(time.time()-t0)/STEPS*1e3:.2f}), warmup {tw:.1f} s, "
          f"loss {losses[0].item():.4f} -> {losses[-1].item():.4f}, peak {torch.cuda.max_memory_allocated()/2**30:.1f} GiB", flush=True)
    torch.cuda.reset_peak_memory_stats()

# the first full step makes the optimizer's state
step_seq(model, batches[0]); torch.cuda.synchronize()

# parts: forward+backward alone, the clipped step alone
def parts():
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        opt.zero_grad(set_to_none=True); forward_loss(whole, batches[0]).backward()
    torch.cuda.synchronize(); s.record()
    for _ in range(10):
        opt.zero_grad(set_to_none=True); forward_loss(whole, batches[0]).backward()
    e.record(); torch.cuda.synchronize(); fb = s.elapsed_time(e) / 10
    s.record()
    for _ in range(10):
        clipped_fused_step(opt, 1.0, params=params)
    e.record(); torch.cuda.synchronize(); o = s.elapsed_time(e) / 10
    opt.zero_grad(set_to_none=True)
    print(f"parts: fwd+bwd {fb:.2f} ms, norm+AdamW {o:.2f} ms", flush=True)

whole = torch.compile(model)
if 'whole' in VARIANTS:
    run('whole', whole)
    parts()
for b in blocks:
    b.forward = torch.compile(b.forward)
if 'blocks' in VARIANTS:
    run('blocks', model)
if 'overlap' in VARIANTS:
    run('overlap', model, overlap=True)
if 'overlap_hp' in VARIANTS:
    run('overlap_hp', model, overlap=True, hp=True)
if 'blocks' in VARIANTS:
    run('blocks2', model)
if 'overlap' in VARIANTS:
    run('overlap2', model, overlap=True)
