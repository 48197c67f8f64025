"""bench.py --cuda_graphs failed its capture at 1.4B after the eager layer part, while a capture alone
(graphdiag.py) worked: run bench's own run_graphed alone, after run_layer, and after run_layer without
free_memory's empty_cache, one case a process."""
import sys, torch
sys.argv = [sys.argv[0], '--cuda_graphs=True'] + sys.argv[1:]
case = sys.argv.pop()
import bench
shape = ("1.4B", 40960, 768, 256, 128, 8, 'topk')
_, T, d, n, E, K, route = shape
if case.startswith('after'):
    r = bench.run_layer('sonic', T, d, n, E, K, route)
    print(case, 'layer', {k: round(v, 3) for k, v in r.items() if isinstance(v, float)}, flush=True)
    if case == 'after_layer':
        bench.free_memory()
try:
    g = bench.run_graphed('sonic', T, d, n, E, K, route)
    print(case, 'graphed', {k: (round(v, 3) if isinstance(v, float) else v) for k, v in g.items()}, flush=True)
except Exception as e:
    print(case, 'graphed FAILED', bench.short(e), flush=True)
