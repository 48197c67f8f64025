"""Two gloo processes run ITERS forward+backward passes of moe.experts_ep_gather (torch backend) in
CHUNKS pieces, or of experts_ep (VARIANT a2a); VARIANT sync swaps torch's functional collectives for
synchronous ones. Prints ok when both finish. From the repository root:
    python docs/results/scripts/gloo/ep_gather_stress.py ITERS CHUNKS VARIANT    # e.g. 2000 3 base"""
import os, sys, faulthandler, torch, torch.distributed as dist, torch.multiprocessing as mp
sys.path.insert(0, os.getcwd())
def work(rank, world, port, iters, chunks, variant):
    faulthandler.enable()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    import moe as M
    import torch.distributed._functional_collectives as fc
    if variant == "noint":   # expert ids as float, through the autograd all-gather
        real = fc.all_gather_tensor
        fc.all_gather_tensor = lambda t, *a: real(t.float(), *a).long() if t.dtype == torch.int64 else real(t, *a)
    if variant == "sync":
        class AG(torch.autograd.Function):
            @staticmethod
            def forward(ctx, t, dim, group):
                ctx.group = group
                out = t.new_empty((t.shape[0] * dist.get_world_size(group),) + tuple(t.shape[1:]))
                dist.all_gather_into_tensor(out, t.contiguous(), group=group)
                return out
            @staticmethod
            def backward(ctx, g):
                out = g.new_empty((g.shape[0] // dist.get_world_size(ctx.group),) + tuple(g.shape[1:]))
                dist.reduce_scatter_tensor(out, g.contiguous(), group=ctx.group)
                return out, None, None
        class RS(torch.autograd.Function):
            @staticmethod
            def forward(ctx, t, op, dim, group):
                ctx.group = group
                out = t.new_empty((t.shape[0] // dist.get_world_size(group),) + tuple(t.shape[1:]))
                dist.reduce_scatter_tensor(out, t.contiguous(), group=group)
                return out
            @staticmethod
            def backward(ctx, g):
                out = g.new_empty((g.shape[0] * dist.get_world_size(ctx.group),) + tuple(g.shape[1:]))
                dist.all_gather_into_tensor(out, g.contiguous(), group=ctx.group)
                return out, None, None, None
        fc.all_gather_single_autograd = AG.apply
        fc.reduce_scatter_single_autograd = RS.apply
        fc.all_gather_tensor = lambda t, dim, group: AG.apply(t, dim, group)
        fc.wait_tensor = lambda t: t
    g = torch.Generator().manual_seed(rank)
    T, d, n, E, K = 24, 16, 8, 4, 2
    for i in range(iters):
        x = torch.randn(T, d, generator=g, requires_grad=True)
        w1 = torch.randn(E // 2, d, 2 * n, generator=g, requires_grad=True)
        w2 = torch.randn(E // 2, n, d, generator=g, requires_grad=True)
        probs = torch.softmax(torch.randn(T, E, generator=g), -1)
        gates, idx = probs.topk(K, -1)
        s = gates.flatten().clone().requires_grad_()
        if variant == "a2a":
            out = M.experts_ep(x, w1, w2, torch.arange(T).repeat_interleave(K), idx.flatten(), s, K, dist.group.WORLD, "torch")
        else:
            out = M.experts_ep_gather(x, w1, w2, idx.flatten(), s, K, dist.group.WORLD, "torch", chunks)
        out.backward(torch.randn(T, d, generator=g))
    dist.barrier()
    if rank == 0:
        print("ok", flush=True)
if __name__ == "__main__":
    iters, chunks, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import random
    mp.start_processes(work, args=(2, random.randint(20000, 60000), iters, chunks, variant), nprocs=2, start_method="spawn")
