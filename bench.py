"""
Benchmarks of the MoE expert layer and of the whole GPT, in the spirit of nanoGPT's bench.py.

Modes (--mode=...):
  layer  one expert layer, forward and backward, every backend side by side on the same inputs and
         the same routing: ms, TFLOPS, MiB alive after forward, peak MiB (the paper's figures 13, 14)
  sweep  T, d and n*K fixed while experts get finer (n halves, K and E double): memory and TFLOPS
  train  full training steps of the GPT for each backend: tokens/s, MFU, peak memory
  load   heatmaps of the per-expert load that train.py logs to expert_load.jsonl
  curves train and val loss against iteration from train.py's log.jsonl files, one line per run
Each mode writes out_dir/<mode>.json (numbers, device, versions, command line), and every mode but
train PNG plots too.

On the GPU:
  python bench.py                                                  # layer mode, the paper's 12 shapes
  python bench.py --shapes=rounding --routing=both                 # token rounding against top-K
  python bench.py --mode=sweep
  python bench.py --mode=train --backends=sonic,grouped_mm
  python bench.py --mode=load --load_file=out-default/expert_load.jsonl
  python bench.py --mode=curves --log_files=out-a/log.jsonl,out-b/log.jsonl --labels=sonic,torch
On CPU, tiny and slow (tests/test_bench.py does this):
  TRITON_INTERPRET=1 python bench.py --shapes=64x32:16/4/2 --backends=torch,sonic
"""

import os
import gc
import sys
import json
import math
import time
import shlex
import platform
import statistics
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
import matplotlib
matplotlib.use('Agg')  # files only, never a window
import matplotlib.pyplot as plt

import moe
from model import GPT, GPTConfig
from moe import EXPERT_BACKENDS

# -----------------------------------------------------------------------------
mode = 'layer' # 'layer' | 'sweep' | 'train' | 'load' | 'curves'
device = 'auto' # 'auto' (cuda if available) | 'cuda' | 'cpu'
dtype = 'bfloat16' # 'bfloat16' | 'float16' | 'float32'; always float32 on CPU (the Triton interpreter has no bf16)
backends = 'sonic,torch,grouped_mm' # comma-separated keys of moe.EXPERT_BACKENDS
out_dir = 'bench_out' # JSON and PNG files go here
warmup = 25 # ms of warm-up per timing (triton.testing.do_bench)
rep = 100 # ms of timed runs per timing; the median is reported
min_runs = 5 # CUDA: at least this many timed runs, whatever rep says
seed = 1337
# layer mode
shapes = 'paper' # 'paper' (12 shapes) | 'rounding' (E sweep at 7B widths) | 'TxD:n/E/K,...' e.g. '4096x512:64/8/4'
only = '' # keep only the shapes whose label contains this substring, e.g. '7B'
check = True # before timing, relative errors of output and grads against the torch backend in fp32
routing = 'topk' # 'topk' | 'rounding' (token rounding, nearest) | 'both'
rounding_tile = 128 # M_tile of token rounding
# sweep mode: T, d, n*K fixed; starts at n = sweep_nK/2, K = 2, E = sweep_E0 and halves n down to sweep_n_min
sweep_T = 24576
sweep_d = 1536
sweep_nK = 2048
sweep_E0 = 32
sweep_n_min = 128
# train mode: a mid-size MoE GPT (GPT-2 small widths, 64 experts of width 256, top-8)
dataset = '' # data/<dataset>/train.bin; '' means random tokens
batch_size = 16
block_size = 1024
gradient_accumulation_steps = 1
n_layer = 12
n_head = 12
n_embd = 768
n_expert = 64
top_k = 8
expert_size = 256
vocab_size = 50304
router_type = 'softmax_topk' # see moe.ROUTER_TYPES
learning_rate = 6e-4 # AdamW needs one; it does not change the speed
weight_decay = 0.1
compile = False # torch.compile the model
burnin = 5 # untimed steps (autotuning, allocator warm-up)
steps = 10 # timed steps
# load mode
load_file = 'out/expert_load.jsonl' # written by train.py into its out_dir
# curves mode
log_files = '' # comma-separated log.jsonl files that train.py writes into its out_dir
labels = '' # comma-separated names for them; '' uses each file's folder name
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
if __name__ == '__main__':  # importing bench (tests, other scripts) must not parse their argv
    exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configurator.py')).read())
config = {k: globals()[k] for k in config_keys}
# -----------------------------------------------------------------------------

device = ('cuda' if torch.cuda.is_available() else 'cpu') if device == 'auto' else device
try:
    device_type = torch.device(device).type
except RuntimeError:
    raise SystemExit(f"bench: device={device!r}: use auto, cpu, cuda or cuda:N")
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
dtype_asked = dtype # checked in main, whatever the device
dtype = dtype if device_type == 'cuda' else 'float32' # the CPU runs the kernels in the interpreter: fp32
dt = DTYPES.get(dtype)
backend_names = [b for b in backends.split(',') if b]
data_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', dataset, 'train.bin')

# The SonicMoE paper's shapes, (T, d) per model size, and its H100 SXM bf16 TFLOPS (fwd, bwd)
PAPER_SIZES = {'1.4B': (40960, 768), '7B': (24576, 1536), '30B': (32768, 4096), '120B': (32768, 4096)}
SONIC_H100 = {
    '1.4B 256/128/8': (337, 365), '1.4B 512/64/4': (399, 402), '1.4B 1024/32/2': (404, 434),
    '7B 256/128/8': (363, 404), '7B 512/64/4': (434, 438), '7B 1024/32/2': (466, 466),
    '30B 256/256/16': (427, 459), '30B 512/128/8': (502, 511), '30B 1024/64/4': (552, 554),
    '120B 512/256/16': (517, 526), '120B 1024/128/8': (558, 567), '120B 2048/64/4': (594, 586),
}
REF_NAME = 'SonicMoE H100 (paper)'
ERR_KEYS = ('out', 'dx', 'dw1', 'dw2', 'dscore')
CHECK_TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}  # flag relative errors above this


def moe_flops(R, d, n):
    """FLOPs of the SwiGLU experts over R routed rows (T*K under top-K, the valid pairs under token
    rounding): up-projection 2*R*d*2n plus down-projection 2*R*n*d forward, twice that backward.
    The router's 2*T*d*E is not counted."""
    return {'fwd': 6 * R * n * d, 'bwd': 12 * R * n * d, 'both': 18 * R * n * d}


def parse_shapes(spec):
    """[(label, T, d, n, E, K)] for 'paper', 'rounding' or 'TxD:n/E/K,...'."""
    if spec == 'paper':  # labels are 'size n/E/K'
        return [(k, *PAPER_SIZES[k.split()[0]], *map(int, k.split()[1].split('/'))) for k in SONIC_H100]
    if spec == 'rounding':
        return [(f'16384x1536 256/{E}/8', 16384, 1536, 256, E, 8) for E in (64, 128, 256, 512)]
    out = []
    for s in spec.split(','):
        try:
            td, nek = s.split(':')
            (T, d), (n, E, K) = map(int, td.lower().split('x')), map(int, nek.split('/'))
        except ValueError:
            raise SystemExit(f"bad shape {s!r} in --shapes: write TxD:n/E/K, e.g. --shapes=4096x512:64/8/4,4096x512:128/8/2")
        if min(T, d, n, E) < 1 or not 1 <= K <= E:
            raise SystemExit(f"bad shape {s!r} in --shapes: T, d, n and E must be at least 1, and 1 <= K <= E")
        out.append((f'{T}x{d} {n}/{E}/{K}', T, d, n, E, K))
    return out


def free_memory():
    gc.collect()
    if device_type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def bench_ms(fn, grad_to_none=None):
    """Median milliseconds of fn(). CUDA: triton.testing.do_bench, which flushes L2 before each run.
    CPU: a timer loop, at least 3 runs and about rep ms."""
    if device_type == 'cuda':
        import triton.testing
        # do_bench times about rep / (one call's time) calls, and only 1 when a call outlasts rep (the
        # 120B shapes' fwd+bwd take ~50 ms): stretch rep so that at least min_runs calls are timed
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        fn()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        for t in grad_to_none or []:
            t.grad = None
        return triton.testing.do_bench(fn, warmup=warmup, rep=max(rep, min_runs * start.elapsed_time(end)),
                                       grad_to_none=grad_to_none, return_mode='median')
    fn()
    times = []
    while len(times) < 3 or (sum(times) < rep and len(times) < 100):
        for t in grad_to_none or []:
            t.grad = None
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rel_err(a, b):
    # b is the fp32 reference; fp32 norms keep the temporaries of a 4 GiB weight gradient affordable
    return ((a.detach().float() - b).norm() / b.norm().clamp_min(1e-30)).item()


def fmt(v, spec):
    return '-' if v is None else format(v, spec)


def short(e):  # an exception in one line, for tables and JSON
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"


# -----------------------------------------------------------------------------
# layer and sweep modes

def layer_inputs(T, d, n, E, K, route):
    """x, w1, w2 and one routing, all random (std 1 inputs, weights scaled so activations stay O(1));
    the same seed gives every backend and both routings the same data. Returns (x, w1, w2, pair_tok,
    pair_exp, pair_score), a fixed output gradient dy, and R, the number of valid pairs."""
    torch.manual_seed(seed)
    x = torch.randn(T, d, device=device, dtype=dt).requires_grad_()
    w1 = (torch.randn(E, d, 2 * n, device=device, dtype=dt) / math.sqrt(d)).requires_grad_()
    w2 = (torch.randn(E, n, d, device=device, dtype=dt) / math.sqrt(n)).requires_grad_()
    logits = torch.randn(T, E, device=device)                            # fp32 router logits
    top, idx = torch.topk(logits, K, dim=-1)
    gates = F.softmax(top, dim=-1)                                       # softmax over the K chosen
    if route == 'rounding':
        pair_tok, pair_exp, pair_score, _, _ = moe.round_tokens(idx, gates, F.softmax(logits, dim=-1),
                                                                  rounding_tile, 'nearest')
    else:
        pair_tok, pair_exp, pair_score = torch.arange(T, device=device).repeat_interleave(K), idx.flatten(), gates.flatten()
    pair_score = pair_score.detach().clone().requires_grad_()
    R = int((pair_exp < E).sum())                                        # host sync, once, before timing
    dy = torch.randn(T, d, device=device, dtype=dt)
    return (x, w1, w2, pair_tok, pair_exp, pair_score), dy, R


def leaves_of(args, clear=False):
    leaves = [args[0], args[1], args[2], args[5]]                        # x, w1, w2, pair_score
    for t in leaves if clear else []:
        t.grad = None
    return leaves


def reference(args, dy):
    """Output and grads (x, w1, w2, pair_score) of the torch backend in fp32 on the same inputs."""
    x, w1, w2, pt, pe, ps = [t.detach().float().requires_grad_() if t.is_floating_point() else t for t in args]
    out = moe.experts_torch(x, w1, w2, pt, pe, ps)
    out.backward(dy.float())
    return [out.detach(), x.grad, w1.grad, w2.grad, ps.grad]


def memory_mib(fn, args, dy):
    """MiB alive after forward (output kept, inputs already allocated) and peak MiB during forward +
    backward, both above the baseline before forward. None off CUDA."""
    if device_type != 'cuda':
        return None, None
    leaves_of(args, clear=True)  # the weight gradients are allocated during backward, as in training
    free_memory()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn(*args)
    torch.cuda.synchronize()
    after_fwd = torch.cuda.memory_allocated() - base
    out.backward(dy)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    leaves_of(args, clear=True)
    return after_fwd / 2**20, peak / 2**20


def run_backend(name, args, dy, flops, ref):
    """Check, memory and timing of one backend on fixed inputs; returns a dict of numbers."""
    fn, leaves, row = EXPERT_BACKENDS[name], leaves_of(args, clear=True), {}
    out = fn(*args)  # the first pass also compiles and autotunes the Triton kernels
    out.backward(dy)
    if ref is not None:
        row['err'] = {k: rel_err(a, b) for k, a, b in zip(ERR_KEYS, [out] + [t.grad for t in leaves], ref)}
        row['check_ok'] = max(row['err'].values()) < CHECK_TOL[dt]
        print(f"  check {name:<11}" + ' '.join(f"{k} {v:.1e}" for k, v in row['err'].items())
              + ('' if row['check_ok'] else f"  FAILED: above {CHECK_TOL[dt]:.0e}"))
    del out
    row['mib_fwd'], row['mib_peak'] = memory_mib(fn, args, dy)
    row['fwd_ms'] = bench_ms(lambda: fn(*args))
    out = fn(*args)  # backward alone: one fixed forward graph, run again and again
    row['bwd_ms'] = bench_ms(lambda: out.backward(dy, retain_graph=True), leaves)
    del out
    row['both_ms'] = bench_ms(lambda: fn(*args).backward(dy), leaves)
    for k in ('fwd', 'bwd', 'both'):
        row[f'{k}_tflops'] = flops[k] / (row[f'{k}_ms'] * 1e-3) / 1e12
    return row


def bench_shape(label, T, d, n, E, K, route):
    """One row per backend for one shape and one routing."""
    args, dy, R = layer_inputs(T, d, n, E, K, route)
    print(f"{label} [{route}]: T={T} d={d} n={n} E={E} K={K}, {R} routed rows")
    if R == 0:  # token rounding with fewer tokens than a tile rounds every expert to 0
        why = f"no routed rows: token rounding rounds every expert to 0 when T={T} < rounding_tile={rounding_tile}"
        print(f"  skipped: {why}")
        return [dict(label=label, T=T, d=d, n=n, E=E, K=K, routing=route, pairs=0, backend=name,
                     mib_contract=None, error=why) for name in backend_names]
    ref = reference(args, dy) if check else None
    # what sonic_kernels' memory contract allows after forward: h, metadata and the output (x's size)
    contract = None if moe.sonic_kernels is None else \
        moe.sonic_kernels.saved_bytes_formula(T, d, n, args[4].numel(), E, dt.itemsize) / 2**20
    rows = []
    for name in backend_names:
        row = dict(label=label, T=T, d=d, n=n, E=E, K=K, routing=route, pairs=R, backend=name, mib_contract=contract)
        try:
            row.update(run_backend(name, args, dy, moe_flops(R, d, n), ref))
        except Exception as e:  # OOM, grouped_mm off the GPU, a kernel that fails to compile: record it, go on
            row['error'] = short(e)
            print(f"  {name}: {row['error']}")
        leaves_of(args, clear=True)
        free_memory()
        rows.append(row)
    base = next((r for r in rows if r['backend'] == 'grouped_mm' and 'error' not in r), None)
    for r in rows:
        if base is not None and 'error' not in r:
            r['speedup_vs_grouped_mm'] = base['both_ms'] / r['both_ms']
    del args, dy, ref
    free_memory()
    return rows


def print_table(rows):
    print(f"{'shape':<22}{'routing':<9}{'backend':<11}{'fwd ms':>9}{'TFLOPS':>9}{'bwd ms':>9}{'TFLOPS':>9}"
          f"{'f+b TF':>9}{'MiB fwd':>9}{'MiB peak':>9}{'vs gmm':>7}")
    for r in rows:
        head = f"{r['label']:<22}{r['routing']:<9}{r['backend']:<11}"
        if 'error' in r:
            print(head + r['error'][:80])
            continue
        print(head + f"{r['fwd_ms']:9.3f}{r['fwd_tflops']:9.3g}{r['bwd_ms']:9.3f}{r['bwd_tflops']:9.3g}"
              f"{r['both_tflops']:9.3g}{fmt(r['mib_fwd'], '.0f'):>9}{fmt(r['mib_peak'], '.0f'):>9}"
              f"{fmt(r.get('speedup_vs_grouped_mm'), '.2f'):>7}" + ('' if r.get('check_ok', True) else '  CHECK FAILED'))


def run_info():
    name = torch.cuda.get_device_name() if device_type == 'cuda' else (platform.processor() or 'cpu')
    triton_version = moe.sonic_kernels.triton.__version__ if moe.sonic_kernels else None
    return dict(device=name, torch=torch.__version__, triton=triton_version, dtype=dtype,
                triton_interpret=os.environ.get('TRITON_INTERPRET', '0'),
                command=' '.join(['python'] + [shlex.quote(a) for a in sys.argv]), config=config)


def write_json(name, payload):
    # written after every shape or backend, to a temporary file then renamed: a crash loses nothing
    path = os.path.join(out_dir, name)
    with open(path + '.tmp', 'w') as f:
        json.dump(dict(run_info(), **payload), f, indent=1)
    os.replace(path + '.tmp', path)
    return path


def save(fig, png):
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"wrote {png}")


def plot_layer(rows, tflops_png, memory_png):
    """Grouped bars per shape: fwd (solid) and bwd (hatched) TFLOPS per backend, with the paper's
    SonicMoE H100 numbers as a reference series; and MiB alive after forward per backend."""
    groups = list(dict.fromkeys((r['label'], r['routing']) for r in rows))
    names = list(dict.fromkeys(r['backend'] for r in rows if 'error' not in r))  # failed ones get no bars
    get = {(r['label'], r['routing'], r['backend']): r for r in rows}
    val = lambda g, b, k: (get.get((*g, b)) or {}).get(k) or 0.0
    series = [(b, [val(g, b, 'fwd_tflops') for g in groups], [val(g, b, 'bwd_tflops') for g in groups]) for b in names]
    paper = [SONIC_H100.get(g[0]) if g[1] == 'topk' else None for g in groups]
    if any(paper):
        series.append((REF_NAME, [p[0] if p else 0 for p in paper], [p[1] if p else 0 for p in paper]))
    xlabels = [lab + (' rounded' if route == 'rounding' else '') for lab, route in groups]
    x, w = np.arange(len(groups)), 0.8 / max(1, 2 * len(series))
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(groups)), 5))
    for i, (b, fwd, bwd) in enumerate(series):
        color = 'gray' if b == REF_NAME else f'C{i}'
        ax.bar(x - 0.4 + (2 * i + 0.5) * w, fwd, w, color=color, label=f'{b} fwd')
        ax.bar(x - 0.4 + (2 * i + 1.5) * w, bwd, w, color=color, alpha=0.5, hatch='//', label=f'{b} bwd')
    ax.set_xticks(x, xlabels, rotation=30, ha='right')
    ax.set_ylabel('TFLOPS')
    ax.set_title(f'MoE expert layer, {dtype}, {run_info()["device"]}')
    if series:
        ax.legend(fontsize=7, ncol=2)
    save(fig, tflops_png)
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(groups)), 5))
    w = 0.8 / max(1, len(names))
    for i, b in enumerate(names):
        ax.bar(x - 0.4 + (i + 0.5) * w, [val(g, b, 'mib_fwd') for g in groups], w, color=f'C{i}', label=b)
    if rows[0].get('mib_contract') is not None:
        contract = [next(r['mib_contract'] for r in rows if (r['label'], r['routing']) == g) for g in groups]
        ax.scatter(x, contract, marker='_', s=2000 / len(groups), color='k', zorder=3, label='memory contract (h + output + metadata)')
    if not any(r.get('mib_fwd') for r in rows):
        ax.text(0.5, 0.5, 'no CUDA memory statistics on this device', transform=ax.transAxes, ha='center')
    ax.set_xticks(x, xlabels, rotation=30, ha='right')
    ax.set_ylabel('MiB alive after forward (above inputs)')
    ax.set_title('MoE expert layer: activation memory')
    ax.legend(fontsize=8)
    save(fig, memory_png)


def sweep_shapes():
    """Constant T, d and n*K; n halves while K and E double: the iso-FLOPs granularity sweep."""
    n, K, E, out = sweep_nK // 2, 2, sweep_E0, []
    while n >= sweep_n_min:
        out.append((f'{sweep_T}x{sweep_d} {n}/{E}/{K}', sweep_T, sweep_d, n, E, K))
        n, K, E = n // 2, K * 2, E * 2
    return out


def plot_sweep(rows, png):
    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, b in enumerate(dict.fromkeys(r['backend'] for r in rows if 'error' not in r)):
        ok = [r for r in rows if r['backend'] == b and 'error' not in r]
        G = [r['d'] / r['n'] for r in ok]
        mem = [(g, r['mib_fwd']) for g, r in zip(G, ok) if r['mib_fwd'] is not None]
        if mem:
            ax_m.plot(*zip(*mem), 'o-', color=f'C{i}', label=b)
        if ok:
            ax_t.plot(G, [r['both_tflops'] for r in ok], 'o-', color=f'C{i}', label=b)
    contract = {r['d'] / r['n']: r['mib_contract'] for r in rows if r.get('mib_contract') is not None}
    if contract:
        ax_m.plot(*zip(*sorted(contract.items())), 'k--', label='memory contract (h + output + metadata)')
    ticks = sorted({(r['d'] / r['n'], f"{r['n']}/{r['E']}/{r['K']}") for r in rows})
    for ax, yl in ((ax_m, 'MiB alive after forward'), (ax_t, 'TFLOPS fwd+bwd')):
        ax.set_xscale('log', base=2)
        ax.set_xticks([g for g, _ in ticks], [f'{g:g}\n{nek}' for g, nek in ticks])
        ax.minorticks_off()
        ax.set_xlabel('granularity d/n, and n/E/K (n*K fixed)')
        ax.set_ylabel(yl)
        if ax.get_lines():
            ax.legend(fontsize=8)
    if not any(r.get('mib_fwd') for r in rows):
        ax_m.text(0.5, 0.5, 'no CUDA memory statistics on this device', transform=ax_m.transAxes, ha='center')
    fig.suptitle(f'Iso-FLOPs granularity sweep: T={sweep_T}, d={sweep_d}, n*K={sweep_nK}, {dtype}')
    save(fig, png)


# -----------------------------------------------------------------------------
# train and load modes

def train_backend(name, route):
    """Burn-in then timed optimizer steps of a fresh GPT (same seed for every backend)."""
    torch.manual_seed(seed)
    cfg = GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                    n_expert=n_expert, top_k=top_k, expert_size=expert_size, moe_backend=name,
                    router_type=router_type, token_rounding=route == 'rounding', rounding_tile=rounding_tile)
    raw = GPT(cfg).to(device)
    optimizer = raw.configure_optimizers(weight_decay, learning_rate, (0.9, 0.95), device_type)
    net = torch.compile(raw) if compile else raw
    ctx = torch.autocast(device_type, dtype=dt) if device_type == 'cuda' and dt != torch.float32 else nullcontext()
    data = np.memmap(data_path, dtype=np.uint16, mode='r') if dataset else None

    def get_batch():
        if data is None:
            xy = torch.randint(vocab_size, (batch_size, block_size + 1), device=device)
            return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
        ix = torch.randint(len(data) - block_size - 1, (batch_size,)).tolist()
        xy = torch.stack([torch.from_numpy(data[i:i + block_size + 1].astype(np.int64)) for i in ix]).to(device)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()

    sync = torch.cuda.synchronize if device_type == 'cuda' else (lambda: None)
    if device_type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for n_steps in (burnin, steps):
        sync()
        t0 = time.perf_counter()
        for _ in range(n_steps):
            for _ in range(gradient_accumulation_steps):
                X, Y = get_batch()
                with ctx:
                    _, loss = net(X, Y)
                (loss / gradient_accumulation_steps).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sync()
        step_s = (time.perf_counter() - t0) / max(n_steps, 1)
    row = dict(backend=name, routing=route, step_ms=step_s * 1e3, loss=loss.item(),
               tokens_per_s=batch_size * block_size * gradient_accumulation_steps / step_s,
               mfu=raw.estimate_mfu(batch_size * gradient_accumulation_steps, step_s),
               params=raw.get_num_params(), active_params=raw.get_num_active_params(),
               peak_mib=torch.cuda.max_memory_allocated() / 2**20 if device_type == 'cuda' else None)
    del X, Y, loss
    # activation memory of one MoE layer: forward on a (batch*block, n_embd) input, output kept
    row['moe_layer_mib_fwd'] = None
    if device_type == 'cuda':
        moe = raw.moe_layers()[0]
        xin = torch.randn(batch_size * block_size, n_embd, device=device, requires_grad=True)
        free_memory()
        base = torch.cuda.memory_allocated()
        with ctx:
            out = moe(xin)
        torch.cuda.synchronize()
        row['moe_layer_mib_fwd'] = (torch.cuda.memory_allocated() - base) / 2**20
        del out, xin
        moe.aux_loss = None
    return row


def read_jsonl(path, hint):
    """The records of one of train.py's .jsonl logs. A run killed mid-write can leave its last line
    unfinished: that line is left out, with a note. hint says what to pass instead of a bad file."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found, or not a file; {hint}")
    try:
        with open(path) as f:
            lines = [line for line in f if line.strip()]
        if lines and not lines[-1].endswith('\n'):
            print(f"note: {path} ends in an unfinished line (a killed run?); it is left out")
            lines = lines[:-1]
        recs = [json.loads(line) for line in lines]
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SystemExit(f"{path} is not one of train.py's .jsonl logs ({type(e).__name__}: {e}); {hint}")
    if not all(isinstance(r, dict) and 'iter' in r for r in recs):
        raise SystemExit(f"{path} holds records without an 'iter'; {hint}")
    return recs


def plot_expert_load(jsonl_path, png_path):
    """Heatmaps of expert load from train.py's expert_load.jsonl, one JSON object per log interval:
    {"iter": int, "tokens_per_expert": [[tokens per expert] for each MoE layer]}, summed over the
    interval. One panel per MoE layer: experts on y, iterations on x, colour = load / mean load
    (1 is balanced, 0 a dead expert).
    Returns the max and min of load / mean per layer at the last interval."""
    hint = "train.py writes expert_load.jsonl into its out_dir: pass --load_file=<out_dir>/expert_load.jsonl"
    recs = read_jsonl(jsonl_path, hint)
    try:
        iters = [r['iter'] for r in recs]
        loads = np.array([r['tokens_per_expert'] for r in recs], dtype=np.float64)  # (intervals, MoE layers, E)
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{jsonl_path} is not train.py's expert_load.jsonl ({type(e).__name__}: {e}); "
                         f"pass --load_file=<out_dir>/expert_load.jsonl")
    if not recs:
        raise SystemExit(f"{jsonl_path} holds no records; train.py writes one per log interval")
    if loads.ndim != 3 or loads.shape[1] == 0:
        raise SystemExit(f"{jsonl_path} records no MoE layer (did n_dense_layers cover every layer?)")
    fig, axes = plt.subplots(loads.shape[1], 1, figsize=(10, 1.5 + 2.2 * loads.shape[1]), sharex=True, squeeze=False)
    summary = {}
    for l, ax in enumerate(axes[:, 0]):
        rel = (loads[:, l] / np.maximum(loads[:, l].mean(1, keepdims=True), 1e-12)).T  # (E, intervals)
        im = ax.imshow(rel, aspect='auto', origin='lower', cmap='coolwarm', vmin=0, vmax=2, interpolation='nearest')
        ax.set_ylabel(f'MoE layer {l}\nexpert')
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.colorbar(im, ax=ax, label='load / mean')
        summary[l] = dict(max_over_mean=float(rel[:, -1].max()), min_over_mean=float(rel[:, -1].min()))
    ticks = np.unique(np.linspace(0, len(iters) - 1, min(len(iters), 10)).round().astype(int))
    axes[-1, 0].set_xticks(ticks, [str(iters[i]) for i in ticks])
    axes[-1, 0].set_xlabel('iteration')
    fig.suptitle(f'expert load / mean load ({os.path.basename(jsonl_path)})')
    save(fig, png_path)
    return summary


def plot_curves(paths, names, png_path):
    """Train loss (every log interval, thin) and val loss (every eval, markers) against iteration,
    one colour per train.py log.jsonl. Returns {name: {iter: val_loss}} for the JSON."""
    fig, ax = plt.subplots(figsize=(8, 5))
    vals = {}
    for i, (path, name) in enumerate(zip(paths, names)):
        recs = read_jsonl(path, "train.py writes log.jsonl into its out_dir")
        train = [(r['iter'], r['loss']) for r in recs if 'loss' in r]
        val = [(r['iter'], r['val_loss']) for r in recs if 'val_loss' in r]
        if not train and not val:
            raise SystemExit(f"{path} holds no losses; is it a train.py log.jsonl?")
        c = f'C{i}'
        if train:
            ax.plot(*zip(*train), color=c, lw=0.8, alpha=0.6, label=f'{name} train')
        if val:
            ax.plot(*zip(*val), color=c, marker='o', lw=1.5, label=f'{name} val')
        vals[name] = {it: v for it, v in val}
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, png_path)
    return vals


# -----------------------------------------------------------------------------
if __name__ == '__main__':
    bad = [b for b in backend_names if b not in EXPERT_BACKENDS]
    curve_files, curve_names = [p for p in log_files.split(',') if p], [n for n in labels.split(',') if n]
    for ok, msg in [(mode in ('layer', 'sweep', 'train', 'load', 'curves'), f"mode={mode!r}: choose layer, sweep, train, load or curves"),
                    (mode != 'curves' or curve_files, "mode=curves needs --log_files=a/log.jsonl,b/log.jsonl"),
                    (not curve_names or len(curve_names) == len(curve_files),
                     f"--labels gives {len(curve_names)} names for {len(curve_files)} --log_files: give one per file, or none"),
                    (routing in ('topk', 'rounding', 'both'), f"routing={routing!r}: choose topk, rounding or both"),
                    (dtype_asked in DTYPES, f"dtype={dtype_asked!r}: choose bfloat16, float16 or float32"),
                    (mode != 'sweep' or (sweep_n_min >= 1 and sweep_E0 >= 2 and min(sweep_T, sweep_d, sweep_nK) >= 1),
                     "sweep needs sweep_n_min >= 1, sweep_E0 >= 2 (K starts at 2) and positive sweep_T, sweep_d, sweep_nK"),
                    (backend_names and not bad, f"backends={backends!r}: choose from {list(EXPERT_BACKENDS)}"),
                    (steps >= 1, f"steps={steps}: time at least one step"),
                    (not dataset or os.path.exists(data_path),
                     f"data/{dataset}/train.bin not found; run data/{dataset}/prepare.py, or --dataset='' for random tokens")]:
        if not ok:
            raise SystemExit(f"bench: {msg}")
    os.makedirs(out_dir, exist_ok=True)
    routes = ['topk', 'rounding'] if routing == 'both' else [routing]
    print(f"device {device} ({run_info()['device']}), dtype {dtype}, backends {backend_names}")
    if mode in ('layer', 'sweep'):
        todo = [s for s in parse_shapes(shapes) if only in s[0]] if mode == 'layer' else sweep_shapes()
        if not todo:
            raise SystemExit(f"bench: no shape left (shapes={shapes!r}, only={only!r}, sweep_nK={sweep_nK})")
        ref = {REF_NAME: {k: dict(fwd_tflops=f, bwd_tflops=b) for k, (f, b) in SONIC_H100.items()}}
        rows = []
        for s in todo:
            for route in (routes if mode == 'layer' else ['topk']):
                rows += bench_shape(*s, route)
                path = write_json(f'{mode}.json', dict(results=rows, **(dict(reference=ref) if mode == 'layer' else {})))
        print_table(rows)
        print(f"wrote {path}")
        if mode == 'layer':
            plot_layer(rows, os.path.join(out_dir, 'layer_tflops.png'), os.path.join(out_dir, 'layer_memory.png'))
        else:
            plot_sweep(rows, os.path.join(out_dir, 'sweep.png'))
    elif mode == 'train':
        rows = []
        for route in routes:
            for name in backend_names:
                try:
                    rows.append(train_backend(name, route))
                except Exception as e:  # as in bench_shape: one failed backend must not lose the others
                    rows.append(dict(backend=name, routing=route, error=short(e)))
                if compile:
                    torch._dynamo.reset()
                free_memory()
                r = rows[-1]
                print(f"{name:<11}{route:<9}" + (r['error'] if 'error' in r else
                      f"{r['step_ms']:9.1f} ms/step {r['tokens_per_s']:10.0f} tok/s  MFU {100 * r['mfu']:5.1f}%  "
                      f"peak {fmt(r['peak_mib'], '.0f')} MiB  one MoE layer fwd {fmt(r['moe_layer_mib_fwd'], '.0f')} MiB  "
                      f"loss {r['loss']:.3f}"))
                path = write_json('train.json', dict(results=rows))
        print(f"wrote {path}")
    elif mode == 'curves':
        names = curve_names or [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in curve_files]
        vals = plot_curves(curve_files, names, os.path.join(out_dir, 'curves.png'))
        for name, v in vals.items():
            print(f"{name:<24} val loss " + ', '.join(f"{it}: {x:.4f}" for it, x in v.items()))
        print(f"wrote {write_json('curves.json', dict(log_files=curve_files, val_loss=vals))}")
    else:
        summary = plot_expert_load(load_file, os.path.join(out_dir, 'expert_load.png'))
        print(f"wrote {write_json('load.json', dict(load_file=load_file, last_interval=summary))}")
