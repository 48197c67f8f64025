"""bench.run_graphed step by step at 1.4B, a sync and a line after each step, to find the one that faults."""
import sys, torch
sys.argv = [sys.argv[0], '--cuda_graphs=True']
import bench
T, d, n, E, K = 40960, 768, 256, 128, 8
def say(m):
    torch.cuda.synchronize(); print(m, flush=True)
layer, x, backward, step = bench.layer_module('sonic', T, d, n, E, K, 'topk')
leaves = [x, *layer.parameters()]
step(); say('eager step')
bench.clear_grads(leaves)
out = layer(x); backward(out); say('eager reference')
eager = [out.detach(), layer.aux_loss.detach()] + [t.grad for t in leaves]
del out
layer.aux_loss = None
bench.clear_grads(leaves)
graphs = torch.cuda.make_graphed_callables(bench.WithAux(layer), (x,), num_warmup_iters=3); say('captured')
def graphed(x):
    out, layer.aux_loss = graphs(x)
    return out
out = graphed(x); say('graphed forward')
backward(out); say('graphed backward')
got = [out, layer.aux_loss] + [t.grad for t in leaves]
print('same', all(torch.equal(a, b) for a, b in zip(eager, got)), flush=True)
del eager, got, out
for i in range(3):
    graphed(x)
say('forward x3 (outputs dropped)')
print('fwd_ms', bench.bench_ms(lambda: graphed(x)), flush=True); say('fwd bench')
out = graphed(x)
print('bwd_ms', bench.bench_ms(lambda: backward(out, retain_graph=True), leaves), flush=True); say('bwd bench')
del out
print('both_ms', bench.bench_ms(lambda: backward(graphed(x)), leaves), flush=True); say('both bench')
