"""Two gloo processes, ITERS rounds of torch's functional all-gather (autograd), all-gather of int64
ids and reduce-scatter (autograd), then backward: VARIANT all, ag, int or rs (one of them), plain
(the synchronous c10d collectives). Prints ok when both finish.
    python docs/results/scripts/gloo/functional_stress.py ITERS VARIANT"""
import os, sys, faulthandler, torch, torch.distributed as dist, torch.multiprocessing as mp
def work(rank, world, port, iters, variant):
    faulthandler.enable()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    import torch.distributed._functional_collectives as fc
    G = dist.group.WORLD
    ag = getattr(fc, "all_gather_single_autograd", None) or fc.all_gather_tensor_autograd
    rs = getattr(fc, "reduce_scatter_single_autograd", None) or fc.reduce_scatter_tensor_autograd
    for i in range(iters):
        x = torch.randn(24, 16, requires_grad=True)
        e = torch.randint(0, 4, (48,))
        if variant == "plain":
            xa = torch.empty(48, 16); dist.all_gather_into_tensor(xa, x.detach())
            ea = torch.empty(96, dtype=torch.int64); dist.all_gather_into_tensor(ea, e)
            y = torch.empty(24, 16); dist.reduce_scatter_tensor(y, (xa * 2).contiguous())
            (x * y).sum().backward()
            continue
        if variant in ("all", "ag"):
            xa = fc.wait_tensor(ag(x, 0, G))
        else:
            xa = torch.cat([x, x])
        if variant in ("all", "int"):
            ea = fc.wait_tensor(fc.all_gather_tensor(e, 0, G))
        if variant in ("all", "rs"):
            y = fc.wait_tensor(rs((xa * 2).contiguous(), "sum", 0, G))
        else:
            y = xa[:24] * 2
        y.sum().backward()
    dist.barrier()
    if rank == 0:
        print("ok", flush=True)
if __name__ == "__main__":
    import random
    mp.start_processes(work, args=(2, random.randint(20000, 60000), int(sys.argv[1]), sys.argv[2]), nprocs=2, start_method="spawn")
