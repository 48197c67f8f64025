# What the peak of a training run holds: runs train.py (its arguments after this script's) with the CUDA
# allocator's history on, replays the trace's allocations and frees, and prints the blocks alive at the
# peak, summed by where they were allocated (the frames in the repo, and the first frame of the stack).
# Usage: python docs/results/scripts/peak_mem/peak.py configs/h200_moe.py --max_iters=4 ...
import collections
import os
import runpy
import sys

import torch

REPO = ('train.py', 'model.py', 'moe.py', 'sonic_kernels.py')
torch.cuda.memory._record_memory_history(enabled='all', stacks='python', max_entries=3_000_000)
sys.argv = ['train.py'] + sys.argv[1:]
try:
    runpy.run_path('train.py', run_name='__main__')
except SystemExit as e:  # train.py ends by sys.exit(0)
    if e.code not in (0, None):
        raise
torch.cuda.synchronize()
trace = torch.cuda.memory._snapshot()['device_traces'][0]
torch.cuda.memory._record_memory_history(enabled=None)

actions = collections.Counter(e['action'] for e in trace)
print('trace events', len(trace), dict(actions))
alive, cur, peak, peak_i = {}, 0, 0, -1
for i, e in enumerate(trace):
    if e['action'] == 'alloc':
        alive[e['addr']] = (e['size'], i)
        cur += e['size']
        if cur > peak:
            peak, peak_i = cur, i
    elif e['action'] == 'free_completed' and e['addr'] in alive:
        cur -= alive.pop(e['addr'])[0]
print(f"replayed peak {peak / 2**30:.3f} GiB at event {peak_i}; max_memory_allocated "
      f"{torch.cuda.max_memory_allocated() / 2**30:.3f} GiB; first event counted "
      f"{'a setup alloc' if trace and trace[0]['action'] == 'alloc' else trace[0]['action']}")
# the blocks alive at the peak: replay again up to it
alive = {}
for e in trace[:peak_i + 1]:
    if e['action'] == 'alloc':
        alive[e['addr']] = e
    elif e['action'] == 'free_completed':
        alive.pop(e['addr'], None)


def where(e):
    # the first and the last frame of the repo's files in the list (the list's order is torch's), and the list's first
    frames = e.get('frames') or []
    repo = [f for f in frames if os.path.basename(f['filename']) in REPO]
    fmt = lambda f: f"{os.path.basename(f['filename'])}:{f['line']} {f['name']}" if f else '-'
    inner = f"{os.path.basename(frames[0]['filename'])[:40]}:{frames[0]['name']}" if frames else '(no python frame)'
    return f"{fmt(repo[0] if repo else None)} < {fmt(repo[-1] if repo else None)}", inner


by = collections.defaultdict(lambda: [0, 0])
for e in alive.values():
    k = where(e)
    by[k][0] += e['size']
    by[k][1] += 1
print(f"alive at the peak: {sum(e['size'] for e in alive.values()) / 2**30:.3f} GiB in {len(alive)} blocks")
print(f"the peak's own allocation: {trace[peak_i]['size'] / 2**20:.1f} MiB at {where(trace[peak_i])}")
print(f"{'GiB':>8} {'blocks':>6}  repo frames, first < last in the trace's order | its first frame")
for (r, i), (s, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:40]:
    print(f"{s / 2**30:8.3f} {n:6d}  {r} | {i}")
# the sizes of the largest blocks alive, to tell parameters, states and activations apart
sizes = collections.Counter(e['size'] for e in alive.values())
print('largest block sizes alive (MiB x count):',
      ', '.join(f"{s / 2**20:.1f}x{c}" for s, c in sorted(sizes.items(), key=lambda kv: -kv[0] * kv[1])[:15]))
