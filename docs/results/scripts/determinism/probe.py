"""Which parts of h200_moe's step (two of its layers) differ between two identical forward+backward
passes on one GPU, eager and compiled, with torch's deterministic algorithms off and on; and the
pass's time in each mode. Prints one line per case."""
import os, sys, time, warnings
os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
import torch
sys.path.insert(0, os.getcwd())
from model import GPT, GPTConfig

cfg = GPTConfig(n_layer=2, n_head=12, n_embd=1536, n_expert=128, top_k=8, expert_size=256, block_size=2048,
                vocab_size=256, moe_backend='sonic')
torch.backends.cuda.matmul.allow_tf32 = True
g = torch.Generator().manual_seed(0)
x = torch.randint(256, (8, 2048), generator=g).cuda()
y = torch.randint(256, (8, 2048), generator=g).cuda()


def grads(f, model):
    with torch.autocast('cuda', torch.bfloat16):
        _, loss = f(x, y)
    loss.backward()
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss.detach(), out


for compiled in (False, True):
    for det, fill in ((False, True), (True, True), (True, False)):
        torch._dynamo.reset()
        torch.use_deterministic_algorithms(det)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.manual_seed(1)
        model = GPT(cfg).cuda()
        f = torch.compile(model) if compiled else model
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            try:
                grads(f, model)
                l1, a = grads(f, model)
                l2, b = grads(f, model)
            except RuntimeError as e:
                print(f"compiled={compiled} det={det} fill={fill}: RuntimeError {str(e).splitlines()[0][:300]}", flush=True)
                continue
        differ = [n for n in a if not torch.equal(a[n], b[n])]
        worst = max((((a[n].float() - b[n].float()).norm() / a[n].float().norm()).item() for n in differ), default=0.0)
        torch.cuda.synchronize()
        t = []
        for _ in range(3):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(10):
                grads(f, model)
            e.record(); torch.cuda.synchronize(); t.append(s.elapsed_time(e) / 10)
        names = sorted({n.split('.', 3)[-1] if n.startswith('transformer.h.') else n for n in differ})
        print(f"compiled={compiled} det={det} fill={fill}: loss equal {torch.equal(l1, l2)}, {len(differ)}/{len(a)} "
              f"grads differ (worst rel {worst:.2e}): {names}; ms a fwd+bwd {', '.join(f'{v:.2f}' for v in t)}",
              flush=True)
        for m in {str(x.message).splitlines()[0][:200] for x in w if 'determin' in str(x.message).lower()}:
            print('   warning:', m, flush=True)
