"""
Scale-out on CPU with gloo, two processes each: DDP, FSDP2 and expert parallelism give the same loss
and gradients as one process on the same global batch (model level), and train.py runs, saves,
resumes and hands its checkpoint to a single process in every mode.
"""

import faulthandler
import json
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import TINY, TORCHRUN, assert_rel, interpreter_problem, ok, run, torchrun, triton_interpreter
from model import GPT, GPTConfig


# one process against two: the same sums in another order, in fp32; relative error of every tensor
DIST_TOL = 1e-5
# these tests keep their tensors on the CPU, where sonic runs in Triton's interpreter; conftest turns it on
# only on a machine without a GPU, so there the in-process sonic tests are left to the CPU's run
CPU_SONIC = os.environ.get("TRITON_INTERPRET") == "1"
NO_CPU_SONIC = ("sonic on CPU tensors in this process needs Triton's interpreter, off on a machine with a GPU "
                "(tests/conftest.py)")
needs_cpu_sonic = pytest.mark.skipif(not CPU_SONIC, reason=NO_CPU_SONIC)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(**kw):
    return GPTConfig(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32, n_expert=4, top_k=2,
                     expert_size=16, n_dense_layers=0, aux_loss_coef=0.0, **kw)


def expert_biases(model):
    return {n: b.clone() for n, b in model.named_buffers() if n.endswith("expert_bias")}


def reference(cfg, idx, tgt, seed):
    """One process on the whole batch: loss, gradients, and the balancing biases after one update."""
    torch.manual_seed(seed)                # the initial weights every rank makes
    model = GPT(cfg)
    _, loss = model(idx, tgt)
    loss.backward()
    model.update_expert_bias()  # sigmoid router: from the whole batch's load; else a no-op
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, expert_biases(model)


def worker(rank, world, port, cfg, idx, tgt, out_dir, mode, seed):
    faulthandler.enable()  # a rank killed by a signal prints where its threads were
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(seed)
    model = GPT(cfg)                       # the same full init on every rank, and in reference()
    B = idx.shape[0] // world
    x, y = idx[rank * B:(rank + 1) * B], tgt[rank * B:(rank + 1) * B]
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model)
        _, loss = ddp(x, y)
        loss.backward()                    # DDP averages the gradients over the ranks
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    elif mode == "fsdp":
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.device_mesh import init_device_mesh
        mesh = init_device_mesh("cpu", (world,))   # FSDP2's default mesh is CUDA wherever a GPU exists
        for block in model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        _, loss = model(x, y)
        loss.backward()                    # FSDP2 reduce-scatters the averaged gradients
        grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
    else:  # "ep" or "ep_gather": each rank keeps half of the experts; the tokens by all-to-all or all-gather
        model.setup_expert_parallel(dist.group.WORLD, "gather" if mode == "ep_gather" else "a2a")
        _, loss = model(x, y)
        loss.backward()
        # the gradient of the mean loss over the global batch: replicated params average over ranks;
        # an expert's gradient already sums what every rank's tokens sent it, so it is divided too
        experts = set(model.expert_param_names())
        for name, p in model.named_parameters():
            if name not in experts:
                dist.all_reduce(p.grad)
            p.grad /= world
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.update_expert_bias()  # sigmoid router: each rank must update from the global batch's load
    lt = torch.tensor([loss.item()])
    dist.all_reduce(lt)
    # results go through files: tensors in a multiprocessing queue die with the process
    torch.save((lt.item() / world, grads, model.get_num_params(), expert_biases(model)),
               os.path.join(out_dir, f"rank{rank}.pt"))
    finish(rank, out_dir)


def finish(rank, out_dir):
    """A worker's end, after it saved its results: the final barrier, then leave."""
    dist.barrier()
    open(os.path.join(out_dir, f"rank{rank}.done"), "w").close()  # every rank has saved: only teardown is left
    dist.destroy_process_group()
    # leave as train.py does under torchrun: gloo now and then aborts a finished process in the C++
    # static destructors ('terminate called without an active exception'); os._exit skips them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(cfg, idx, tgt, tmp_path, mode, seed):
    """Runs worker on two spawned ranks and returns each rank's saved (loss, grads, n_params,
    biases). Any exit but 0 fails, with every rank's exit code in the message."""
    return spawn_ranks(worker, (cfg, idx, tgt, str(tmp_path), mode, seed), tmp_path)


def spawn_ranks(target, args, tmp_path):
    """Runs target(rank, 2, port, *args) on two spawned ranks; each saves tmp_path/rank{r}.pt and
    touches rank{r}.done after its final barrier. Returns the saved objects by rank."""
    ctx = mp.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=target, args=(r, 2, port, *args)) for r in range(2)]
    with triton_interpreter():   # the ranks' sonic on their CPU tensors: a spawned rank takes this environment
        for p in procs:
            p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:  # a rank still running after the timeout would hold the port: stop it
        if p.is_alive():
            p.kill()
            p.join()
    codes = [p.exitcode for p in procs]
    done = [(tmp_path / f"rank{r}.done").exists() for r in range(2)]
    assert codes == [0, 0], f"exit codes {codes} (passed the final barrier: {done})"
    return {r: torch.load(tmp_path / f"rank{r}.pt") for r in range(2)}


@pytest.mark.parametrize("mode,router_type", [("ddp", "softmax_topk"), ("fsdp", "softmax_topk"), ("ddp", "sigmoid")])
def test_data_parallel_matches_single_process(mode, router_type, tmp_path, seed):
    # no aux loss: it balances each rank's own tokens, so it is per rank by design. The sigmoid
    # router's balancing bias is not: every rank updates it from the load of the global batch
    cfg = tiny_config(router_type=router_type)
    idx, tgt = torch.randint(0, 64, (4, 16)), torch.randint(0, 64, (4, 16))
    ref_loss, ref_grads, ref_biases = reference(cfg, idx, tgt, seed)
    if router_type == "sigmoid":
        assert all(b.abs().sum() > 0 for b in ref_biases.values())  # the update moved every layer's bias
    for rank, (loss, grads, n_params, biases) in spawn(cfg, idx, tgt, tmp_path, mode, seed).items():
        assert n_params == GPT(cfg).get_num_params()  # FSDP2 counts whole parameters, not shards
        assert_rel(torch.tensor(loss), torch.tensor(ref_loss), DIST_TOL, "loss")
        for name, g in grads.items():
            assert_rel(g, ref_grads[name], DIST_TOL, f"grad {name}")
        assert biases.keys() == ref_biases.keys()
        for name, b in biases.items():
            assert torch.equal(b, ref_biases[name]), name


@pytest.mark.parametrize("backend,token_rounding,mode", [("torch", False, "ep"), ("torch", True, "ep"), ("sonic", False, "ep"),
                                                        ("sonic", True, "ep"), ("torch", False, "ep_gather"),
                                                        ("sonic", False, "ep_gather")])
def test_expert_parallel_matches_single_process(backend, token_rounding, mode, tmp_path, seed):
    # sonic: the gate is applied on the rank that runs the expert, and its gradient (<dA', a> in
    # the kernels) travels home through the exchange; it runs in the Triton interpreter on CPU
    if backend == "sonic":
        pytest.importorskip("triton")
        if not CPU_SONIC:   # the one-process reference runs here
            pytest.skip(NO_CPU_SONIC)
    cfg = tiny_config(token_rounding=token_rounding, rounding_tile=4, moe_backend=backend)
    idx = torch.randint(0, 64, (4, 16))
    tgt = torch.randint(0, 64, (4, 16))
    if token_rounding:
        # each rank rounds its own half of the batch, as under DDP, so the reference is the mean of
        # one process's loss and gradients over the two halves, not one process on the whole batch
        halves = [reference(cfg, idx[r * 2:(r + 1) * 2], tgt[r * 2:(r + 1) * 2], seed) for r in range(2)]
        ref_loss = sum(h[0] for h in halves) / 2
        ref_grads = {n: (halves[0][1][n] + halves[1][1][n]) / 2 for n in halves[0][1]}
    else:
        ref_loss, ref_grads, _ = reference(cfg, idx, tgt, seed)
    results = spawn(cfg, idx, tgt, tmp_path, mode, seed)
    for rank, (loss, grads, n_params, _) in results.items():
        assert n_params == GPT(cfg).get_num_params()  # the experts on the other rank count too
        assert_rel(torch.tensor(loss), torch.tensor(ref_loss), DIST_TOL, "loss")
        for name, g in grads.items():
            want = ref_grads[name]
            if name.endswith(".w1") or name.endswith(".w2"):
                E_local = cfg.n_expert // 2
                want = want[rank * E_local:(rank + 1) * E_local]
            assert_rel(g, want, DIST_TOL, f"grad {name}")


def ep_layer_inputs(routing, seed):
    """One MoE layer's inputs for each of two ranks (4 experts, 2 a rank), the same on every rank:
    x (T, d) and a pair list per rank, shared full weights. routing picks the pairs:
      "both":    top-3 of 4, so every token reaches both ranks, with two of its experts on one of them;
      "one":     top-2 among experts 0 and 1, so every row goes to rank 0 and rank 1 receives nothing;
      "rounded": token rounding (tile 4) of a random top-2: a variable number of pairs per token."""
    import moe as M
    g = torch.Generator().manual_seed(seed)
    T, d, n, E = 16, 32, 16, 4
    K = {"both": 3, "one": 2, "rounded": 2}[routing]
    w1, w2 = torch.randn(E, d, 2 * n, generator=g), torch.randn(E, n, d, generator=g)
    ranks = []
    for _ in range(2):
        x = torch.randn(T, d, generator=g)
        probs = torch.softmax(torch.randn(T, E, generator=g), -1)
        if routing == "one":
            probs[:, 2:] = 0.0
        gates, idx = probs.topk(K, -1)
        if routing == "rounded":
            pair_tok, pair_exp, pair_score, _, _ = M.round_tokens(idx, gates, probs, 4, "nearest")
        else:
            pair_tok, pair_exp, pair_score = torch.arange(T).repeat_interleave(K), idx.flatten(), gates.flatten()
        ranks.append((x, pair_tok, pair_exp, pair_score, torch.randn(T, d, generator=g)))  # last: the output's gradient
    return w1, w2, ranks, None if routing == "rounded" else K


def ep_layer_rank(rank, world, port, routing, seed):
    """A layer-level EP worker's start: the process group, then this rank's inputs as leaves and its
    half of the experts: x, w1, w2, pair_tok, pair_exp, pair_score, the output's gradient, K."""
    faulthandler.enable()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    w1, w2, ranks, K = ep_layer_inputs(routing, seed)
    x, pair_tok, pair_exp, pair_score, g = ranks[rank]
    x, pair_score = x.clone().requires_grad_(), pair_score.clone().requires_grad_()
    E_local = w1.shape[0] // world
    w1, w2 = (w[rank * E_local:(rank + 1) * E_local].clone().requires_grad_() for w in (w1, w2))
    return x, w1, w2, pair_tok, pair_exp, pair_score, g, K


def ep_layer_reference(routing, seed):
    """One process per rank's inputs with all experts (experts_torch): each rank's output and the
    gradients of x, w1, w2 and the gates."""
    import moe as M
    w1, w2, ranks, K = ep_layer_inputs(routing, seed)
    ref = []
    for x, pair_tok, pair_exp, pair_score, g in ranks:
        leaves = [t.clone().requires_grad_() for t in (x, w1, w2, pair_score)]
        out = M.experts_torch(leaves[0], leaves[1], leaves[2], pair_tok, pair_exp, leaves[3])
        ref.append((out.detach(), torch.autograd.grad(out, leaves, g)))
    return ref


def assert_ep_layer_matches(rank, out, grads, ref, E_local):
    """A rank's output and gradients against one process's; an expert's gradient sums both ranks' tokens."""
    assert_rel(out, ref[rank][0], DIST_TOL, "out")
    for name, got, want in zip(("x", "w1", "w2", "score"), grads, ref[rank][1]):
        if name in ("w1", "w2"):  # this rank's experts, from both ranks' tokens
            want = (want + ref[1 - rank][1][1 if name == "w1" else 2])[rank * E_local:(rank + 1) * E_local]
            if not want.any():  # experts no token chose: no gradient
                assert not got.any(), name
                continue
        assert_rel(got, want, DIST_TOL, f"grad {name}")


def ep_layer_worker(rank, world, port, routing, out_dir, seed):
    """experts_ep on this rank's inputs and half of the experts, recording the shapes that go into
    and come out of each differentiable exchange in forward (rows, gates, rows back)."""
    import torch.distributed._functional_collectives as fc
    import moe as M
    x, w1, w2, pair_tok, pair_exp, pair_score, g, K = ep_layer_rank(rank, world, port, routing, seed)
    sizes = []
    a2a = fc.all_to_all_single_autograd
    def record(t, *a):
        out = a2a(t, *a)
        sizes.append((tuple(t.shape), tuple(out.shape)))
        return out
    fc.all_to_all_single_autograd = record
    out = M.experts_ep(x, w1, w2, pair_tok, pair_exp, pair_score, K, dist.group.WORLD, "torch")
    fc.all_to_all_single_autograd = a2a
    out.backward(g)
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (x, w1, w2, pair_score)]
    torch.save((sizes, out.detach(), grads), os.path.join(out_dir, f"rank{rank}.pt"))
    finish(rank, out_dir)


@pytest.mark.parametrize("routing", ["both", "one", "rounded"])
def test_expert_parallel_sends_each_row_once_per_rank(routing, tmp_path, seed):
    """A token's row travels once to each rank that holds any of its experts and comes back once
    from it: the rows exchanged are the (token, rank) pairs of the routing, fewer than its
    (token, expert) pairs, and the layer still gives one process's output and every gradient
    (experts' gradients: the sum over both ranks' tokens)."""
    w1, w2, ranks, K = ep_layer_inputs(routing, seed)
    E_local = w1.shape[0] // 2
    ref = ep_layer_reference(routing, seed)
    results = spawn_ranks(ep_layer_worker, (routing, str(tmp_path), seed), tmp_path)
    for rank, (sizes, out, grads) in results.items():
        x, pair_tok, pair_exp, pair_score, _ = ranks[rank]
        d, valid = x.shape[1], pair_exp < w1.shape[0]
        rows = len(set(zip(pair_tok[valid].tolist(), (pair_exp[valid] // E_local).tolist())))  # (token, rank)
        n_pairs = int(valid.sum())
        assert rows < n_pairs  # else the routing could not tell one row per rank from one per pair
        # forward's differentiable exchanges: the rows out and in, the gates, the summed rows back
        (x_in, x_out), (s_in, _), (y_in, y_out) = sizes
        assert x_in == y_out == (rows, d), (sizes, rows, n_pairs)
        assert s_in == (n_pairs,)
        assert x_out == y_in
        if routing == "one":  # every row went to rank 0
            assert x_out == ((rows + len(set(ranks[1 - rank][1].tolist()))) if rank == 0 else 0, d)
        assert_ep_layer_matches(rank, out, grads, ref, E_local)


def ep_gather_layer_worker(rank, world, port, routing, backend, out_dir, seed, chunks=1):
    """experts_ep_gather on this rank's inputs and half of the experts: its output and gradients."""
    import moe as M
    x, w1, w2, _, pair_exp, pair_score, g, K = ep_layer_rank(rank, world, port, routing, seed)
    sizes, gather = [], M._GlooAllGather.apply  # gloo's all-gathers (torch's functional ones crash on gloo)
    def record(t, *a):   # the forward's all-gathers of the expert ids: one a piece, its pairs
        if not t.is_floating_point():
            sizes.append(t.numel())
        return gather(t, *a)
    M._GlooAllGather.apply = record
    out = M.experts_ep_gather(x, w1, w2, pair_exp, pair_score, K, dist.group.WORLD, backend, chunks)
    M._GlooAllGather.apply = gather
    out.backward(g)
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (x, w1, w2, pair_score)]
    torch.save((out.detach(), grads, sizes), os.path.join(out_dir, f"rank{rank}.pt"))
    finish(rank, out_dir)


@pytest.mark.parametrize("backend,chunks", [("torch", 1), ("sonic", 1), ("torch", 3), ("sonic", 3)])
@pytest.mark.parametrize("routing", ["both", "one"])
def test_expert_parallel_by_all_gather_matches_one_process(routing, backend, chunks, tmp_path, seed):
    """experts_ep_gather gives one process's output and every gradient, also where a rank's experts
    get no pair at all ("one": rank 1 runs its experts on unused slots only), and so it does in
    pieces whose exchanges overlap the experts (3 pieces of unequal size: the tokens do not divide by 3)."""
    if backend == "sonic":
        pytest.importorskip("triton")
        if why := interpreter_problem():   # the ranks' sonic runs interpreted, also on a machine with a GPU
            pytest.skip(why)
    E_local = ep_layer_inputs(routing, seed)[0].shape[0] // 2
    if chunks > 1:
        assert ep_layer_inputs(routing, seed)[2][0][0].shape[0] % chunks
    ref = ep_layer_reference(routing, seed)
    results = spawn_ranks(ep_gather_layer_worker, (routing, backend, str(tmp_path), seed, chunks), tmp_path)
    T, K = ep_layer_inputs(routing, seed)[2][0][0].shape[0], ep_layer_inputs(routing, seed)[3]
    for rank, (out, grads, sizes) in results.items():
        assert sizes == [K * (T * (i + 1) // chunks - T * i // chunks) for i in range(chunks)], sizes
        assert_ep_layer_matches(rank, out, grads, ref, E_local)


def test_ep_size_must_divide_experts(monkeypatch):
    """setup_expert_parallel refuses a group whose size does not divide n_expert, and pieces
    (chunks) without the gather exchange, and slices the experts when all is well. A 1-rank gloo group stands in for a group of 2 (world size patched)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
        cfg = tiny_config()
        cfg.n_expert = 3
        with pytest.raises(ValueError, match="n_expert=3 is not divisible by ep_size=2"):
            GPT(cfg).setup_expert_parallel(dist.group.WORLD)
        # pieces need the gather exchange: a2a reads each piece's sizes on the host
        with pytest.raises(ValueError, match="ep_chunks=2 with ep_exchange='a2a'"):
            GPT(tiny_config()).setup_expert_parallel(dist.group.WORLD, "a2a", 2)
        with pytest.raises(ValueError, match="ep_chunks=0 with ep_exchange='gather'"):
            GPT(tiny_config()).setup_expert_parallel(dist.group.WORLD, "gather", 0)
        model = GPT(tiny_config())  # 4 experts over 2 ranks: rank 0 keeps experts 0 and 1
        full = model.moe_layers()[0].w1.detach().clone()
        model.setup_expert_parallel(dist.group.WORLD)
        assert torch.equal(model.moe_layers()[0].w1, full[:2])
    finally:
        dist.destroy_process_group()


def one_rank_ep_layer(token_rounding):
    """A 1-rank gloo group (the caller destroys it) and one layer's inputs for moe.experts_ep: the
    whole exchange path runs, every row to this rank. d != 2n, so shapes tell x from h."""
    import moe as M
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    T, d, n, E, K = 64, 48, 16, 8, 2
    x = torch.randn(T, d, requires_grad=True)
    w1 = torch.randn(E, d, 2 * n, requires_grad=True)
    w2 = torch.randn(E, n, d, requires_grad=True)
    probs = torch.softmax(torch.randn(T, E), -1)
    gates, idx = probs.topk(K, -1)
    if token_rounding:
        pair_tok, pair_exp, pair_score, _, _ = M.round_tokens(idx, gates, probs, 8, "nearest")
    else:
        pair_tok, pair_exp, pair_score = torch.arange(T).repeat_interleave(K), idx.flatten(), gates.flatten()
    return x, w1, w2, pair_tok, pair_exp, pair_score.clone().requires_grad_(), None if token_rounding else K


@needs_cpu_sonic
@pytest.mark.parametrize("token_rounding", [False, True])
def test_expert_parallel_saves_only_received_rows_h_and_gates(token_rounding):
    """EP's memory contract with the sonic backend: for backward, the layer keeps the rows it
    received (the experts' input: one a token, however many of its experts are here), h and the
    received gates (one a pair), plus integer indices; no expert output and no fp32 copy of the
    routed rows."""
    pytest.importorskip("triton")
    import moe as M
    try:
        x, w1, w2, pair_tok, pair_exp, pair_score, K = one_rank_ep_layer(token_rounding)
        saved = {}
        def pack(t):
            if t.is_floating_point() and t.data_ptr() not in (w1.data_ptr(), w2.data_ptr()):
                saved[t.untyped_storage().data_ptr()] = tuple(t.shape)
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = M.experts_ep(x, w1, w2, pair_tok, pair_exp, pair_score, K, dist.group.WORLD, "sonic")
        valid = pair_exp < w1.shape[0]
        R, d, n2 = int(valid.sum()), w1.shape[1], w1.shape[2]           # pairs sent = received
        U = pair_tok[valid].unique().numel()                             # rows: one rank, one a token
        assert U < R  # the layer's tokens have several experts each here
        assert sorted(saved.values()) == sorted([(U, d), (R, n2), (R,)]), saved
        out.sum().backward()  # and the saved set is enough for backward
        assert x.grad is not None and pair_score.grad is not None
    finally:
        dist.destroy_process_group()


@needs_cpu_sonic
def test_expert_parallel_sends_autocast_rows(monkeypatch):
    """Under autocast the experts run in its dtype (bf16 on a GPU), so EP sends half-precision rows
    (half the bytes of the fp32 residual stream) and still agrees with the one-process backend, and
    with the fp32 torch reference to half precision, output and every gradient. fp16 here: the
    Triton interpreter stores bf16 as raw uint16 and computes garbage with it."""
    pytest.importorskip("triton")
    import torch.distributed._functional_collectives as fc
    import moe as M
    sent = []
    a2a = fc.all_to_all_single_autograd
    monkeypatch.setattr(fc, "all_to_all_single_autograd", lambda t, *a: sent.append(t.dtype) or a2a(t, *a))
    try:
        x, w1, w2, pair_tok, pair_exp, pair_score, K = one_rank_ep_layer(False)
        with torch.autocast("cpu", dtype=torch.float16):
            out = M.experts_ep(x, w1, w2, pair_tok, pair_exp, pair_score, K, dist.group.WORLD, "sonic")
            ref = M.experts_sonic(x, w1, w2, pair_tok, pair_exp, pair_score)
        assert sent == [torch.float16, torch.float32, torch.float16]  # rows, gates, weighted rows
        assert_rel(out.float(), ref.float(), 1e-2, "out against one process")
        leaves = (x, w1, w2, pair_score)
        g = torch.randn(out.shape)
        got = [out.float()] + list(torch.autograd.grad(out.float(), leaves, g))
        fp32 = M.experts_torch(x, w1, w2, pair_tok, pair_exp, pair_score)  # no autocast
        want = [fp32] + list(torch.autograd.grad(fp32, leaves, g))
        for name, a, b in zip(("out", "x", "w1", "w2", "score"), got, want):
            assert_rel(a, b, 2e-2, f"{name} against fp32")
    finally:
        dist.destroy_process_group()


# -----------------------------------------------------------------------------
# train.py under torchrun

def iter_losses(out_dir):
    lines = [json.loads(l) for l in (out_dir / 'log.jsonl').read_text().splitlines()]
    return [l['loss'] for l in lines if 'loss' in l]


def test_train_modes_agree_resume_and_hand_over_to_one_process(data_dir, tmp_path):
    common = [*TINY, f'--data_dir={data_dir}', '--eval_interval=3', '--gradient_accumulation_steps=2',
              '--learning_rate=1e-2', '--warmup_iters=0', '--decay_lr=False']  # big steps: a wrong gradient shows
    losses = {}
    for mode, extra in [('ddp', []), ('fsdp', ['--fsdp=True']), ('ep', ['--ep_size=2'])]:
        out = tmp_path / mode
        ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={out}', '--max_iters=6', *extra))
        ckpt = torch.load(out / 'ckpt.pt', map_location='cpu', weights_only=True)
        assert ckpt['model']['transformer.h.0.mlp.w1'].shape == (4, 32, 32)  # whole, not a shard or slice
        expert_states = [st['exp_avg'].shape for st in ckpt['optimizer']['state'].values() if st['exp_avg'].dim() == 3]
        assert sorted(expert_states) == [(4, 16, 32)] * 2 + [(4, 32, 32)] * 2  # w2, w1 of 2 layers, all experts
        # resume in the same mode, then a single process evaluates the checkpoint
        ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={out}', '--max_iters=8', '--init_from=resume', *extra))
        losses[mode] = iter_losses(out)
        r = ok(run(sys.executable, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={out}',
                   '--init_from=resume', '--eval_only=True'))
        assert 'step 8: train loss' in r.stdout
    # the same global batches, the same initial weights: the three modes compute the same training
    assert len(losses['ddp']) == 8  # iterations 0..7; 6 and 7 after the resume
    for mode in ('fsdp', 'ep'):
        assert torch.allclose(torch.tensor(losses[mode]), torch.tensor(losses['ddp']), rtol=1e-5), (mode, losses)


def assert_ddp_trains_as_ep(launch, data_dir, tmp_path, iters, ep_args=()):
    """DDP over the launch's ranks and EP=2 on the same ranks train exactly alike: 4 micro-steps, big steps."""
    common = [*TINY, f'--data_dir={data_dir}', '--eval_interval=100', f'--max_iters={iters}',
              '--gradient_accumulation_steps=4', '--save_checkpoints=False',
              '--learning_rate=1e-2', '--warmup_iters=0', '--decay_lr=False']  # big steps: a wrong gradient shows
    ok(torchrun(*launch, 'train.py', *common, f'--out_dir={tmp_path / "ddp"}'))
    ok(torchrun(*launch, 'train.py', *common, f'--out_dir={tmp_path / "ep"}', '--ep_size=2', *ep_args))
    ddp, ep = iter_losses(tmp_path / 'ddp'), iter_losses(tmp_path / 'ep')
    assert len(ddp) == iters
    assert torch.allclose(torch.tensor(ep), torch.tensor(ddp), rtol=1e-5), (ep, ddp)


def test_ddp_micro_steps_train_as_expert_parallel(data_dir, tmp_path):
    """Two ranks, two micro-steps each: DDP skips the all-reduce of the first (no_sync on the wrapper
    that train.py compiles around) and must train as EP=2, whose ranks reduce by hand after the last."""
    assert_ddp_trains_as_ep(TORCHRUN, data_dir, tmp_path, iters=3)


def test_ddp_bucket_size_changes_no_result(data_dir, tmp_path):
    """DDP's bucket size (--ddp_bucket_mb) changes when each all-reduce starts, not what it sums: a
    bucket far smaller than any gradient (one bucket a parameter) trains exactly as the default."""
    common = [*TINY, f'--data_dir={data_dir}', '--eval_interval=100', '--max_iters=3', '--gradient_accumulation_steps=2',
              '--save_checkpoints=False', '--learning_rate=1e-2', '--warmup_iters=0', '--decay_lr=False']
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "default"}'))
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "small"}', '--ddp_bucket_mb=0.0001'))
    default, small = iter_losses(tmp_path / 'default'), iter_losses(tmp_path / 'small')
    assert len(default) == 3 and default == small, (default, small)


def test_fsdp_keeping_gathered_weights_trains_alike(data_dir, tmp_path):
    """FSDP2 with --fsdp_reshard=False (each block's gathered weights kept from its forward to its
    backward, ZeRO-2's traffic) computes the same training as resharding them (ZeRO-3)."""
    common = [*TINY, f'--data_dir={data_dir}', '--eval_interval=100', '--max_iters=3', '--gradient_accumulation_steps=2',
              '--save_checkpoints=False', '--learning_rate=1e-2', '--warmup_iters=0', '--decay_lr=False', '--fsdp=True']
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "reshard"}'))
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "keep"}', '--fsdp_reshard=False'))
    reshard, keep = iter_losses(tmp_path / 'reshard'), iter_losses(tmp_path / 'keep')
    assert len(reshard) == 3 and torch.allclose(torch.tensor(keep), torch.tensor(reshard), rtol=1e-6), (keep, reshard)


def test_cuda_graphs_are_for_one_process(data_dir, tmp_path):
    """compile_mode='reduce-overhead' (CUDA graphs, measured on one GPU only) compiles as 'default'
    under torchrun, with a note: torch.compile is replaced by a recorder, so nothing compiles here."""
    wrap = tmp_path / 'wrap.py'
    # Each rank records its mode in a file of its own: two ranks printing to one pipe can interleave.
    wrap.write_text("import os, runpy, sys, torch\n"
                    f"rec = {str(tmp_path)!r} + '/mode_' + os.environ['RANK']\n"
                    "torch.compile = lambda m, mode=None, **k: (open(rec, 'a').write(repr(mode) + '\\n'), m)[1]\n"
                    "sys.argv = sys.argv[1:]\nsys.path.insert(0, '.')\nrunpy.run_path('train.py', run_name='__main__')\n")
    r = ok(torchrun(*TORCHRUN, wrap, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path / "run"}',
                    '--compile=True', '--compile_mode=reduce-overhead', '--max_iters=1', '--gradient_accumulation_steps=2'))
    assert r.stdout.count("compile_mode='reduce-overhead' (CUDA graphs) is for one process") == 1, r.stdout
    modes = [(tmp_path / f'mode_{rank}').read_text() for rank in range(2)]
    assert modes == ["'default'\n", "'default'\n"], modes


def test_expert_parallel_in_pieces_trains_as_ddp(data_dir, tmp_path):
    """EP=2 with ep_exchange='gather' in 3 pieces a layer (each piece's exchanges issued before the
    piece ahead runs its experts) trains exactly as DDP, as one piece does (the test below)."""
    assert_ddp_trains_as_ep(TORCHRUN, data_dir, tmp_path, iters=3, ep_args=('--ep_exchange=gather', '--ep_chunks=3'))


def test_expert_parallel_by_all_gather_trains_as_ddp(data_dir, tmp_path):
    """EP=2 with ep_exchange='gather' (every token to both ranks, the rows summed home by a
    reduce-scatter; no sizes exchanged) must train as DDP too."""
    assert_ddp_trains_as_ep(TORCHRUN, data_dir, tmp_path, iters=3, ep_args=('--ep_exchange=gather',))


def test_expert_parallel_clips_inside_a_fused_adamw(data_dir, tmp_path):
    """EP=2 with a fused AdamW (CUDA's, forced here on the CPU) clips inside the optimizer step by the
    gradient norm summed over the EP group, and must train as EP=2 scaling its gradients by hand. The
    clip is active: without it the run differs."""
    wrapper = tmp_path / 'fused_train.py'
    wrapper.write_text("import os, runpy, sys, torch\n"
                       "sys.path.insert(0, os.getcwd())  # the repository, where torchrun starts it\n"
                       "real_adamw = torch.optim.AdamW\n"
                       "class FusedAdamW(real_adamw):\n"
                       "    def __init__(self, *a, **k):\n"
                       "        super().__init__(*a, **k, fused=True)\n"
                       "torch.optim.AdamW = FusedAdamW\n"
                       "runpy.run_path('train.py', run_name='__main__')\n")
    common = [*TINY, f'--data_dir={data_dir}', '--eval_interval=3', '--max_iters=3', '--ep_size=2',
              '--gradient_accumulation_steps=2', '--learning_rate=1e-2', '--warmup_iters=0', '--decay_lr=False']
    ok(torchrun(*TORCHRUN, wrapper, *common, f'--out_dir={tmp_path / "fused"}', '--grad_clip=0.05'))
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "plain"}', '--grad_clip=0.05'))
    ok(torchrun(*TORCHRUN, 'train.py', *common, f'--out_dir={tmp_path / "noclip"}', '--grad_clip=0.0'))
    ckpt = {k: torch.load(tmp_path / k / 'ckpt.pt', map_location='cpu', weights_only=True) for k in ('fused', 'plain', 'noclip')}
    assert all(g['fused'] for g in ckpt['fused']['optimizer']['param_groups'])
    assert not any(g.get('fused') for g in ckpt['plain']['optimizer']['param_groups'])
    # Adam's first moment carries the clipped gradients' scale, which its update divides away
    for i, st in ckpt['plain']['optimizer']['state'].items():
        assert_rel(ckpt['fused']['optimizer']['state'][i]['exp_avg'], st['exp_avg'], 1e-5, f"exp_avg {i}")
    far = 0.0
    for k, v in ckpt['plain']['model'].items():
        if v.is_floating_point():
            assert_rel(ckpt['fused']['model'][k], v, 1e-5, k)
            far = max(far, ((ckpt['noclip']['model'][k] - v).norm() / v.norm()).item())
    assert far > 1e-3, far


@pytest.mark.parametrize("args,message", [
    (['--fsdp=True', '--ep_size=2'], 'fsdp=True with ep_size>0 is not supported'),
    (['--ep_size=3'], 'n_expert=4 is not divisible by ep_size=3'),
    (['--ep_size=4'], 'world size 2 is not divisible by ep_size=4'),
    (['--ep_exchange=ring'], "ep_exchange='ring'; use one of ('a2a', 'gather')"),
    (['--ddp_bucket_mb=0'], 'ddp_bucket_mb=0.0; use a positive size in MiB'),
    (['--ep_size=2', '--ep_chunks=2'], "ep_chunks=2 with ep_exchange='a2a'; use ep_chunks >= 1"),
    (['--ep_size=2', '--ep_exchange=gather', '--ep_chunks=0'], "ep_chunks=0 with ep_exchange='gather'"),
    (['--ep_size=2', '--ep_exchange=gather', '--token_rounding=True', '--rounding_tile=4'],
     "ep_exchange='gather' needs plain top-K routing"),
])
def test_bad_scale_out_settings(data_dir, tmp_path, args, message):
    r = run(*TORCHRUN, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
            '--gradient_accumulation_steps=2', '--max_iters=2', *args)
    assert r.returncode != 0 and message in r.stdout + r.stderr, r.stderr[-2000:]


def test_scale_out_needs_torchrun(data_dir, tmp_path):
    r = run(sys.executable, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}', '--ep_size=1')
    assert r.returncode != 0 and 'needs a torchrun launch' in r.stderr, r.stderr[-2000:]


def test_expert_parallel_combines_with_data_parallel(data_dir, tmp_path):
    """4 ranks as EP=2 x DP=2: each pair of ranks splits the experts, and the two ranks that hold
    the same experts average their gradients. It must train exactly as DDP over the 4 ranks."""
    assert_ddp_trains_as_ep([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=4'],
                            data_dir, tmp_path, iters=4)
