"""
Benchmarks of the MoE layer and of the whole GPT, in the spirit of nanoGPT's bench.py.

Modes (--mode=...):
  layer    one MoE layer as a training step runs it: MoE(GPTConfig(...)) in train mode, its router,
           routing, experts and balancing loss, forward and backward, every backend side by side:
           ms, TFLOPS, MiB alive after forward, peak MiB (the paper's figures 13, 14). A second set
           of columns, "experts only (a part)", times the experts alone on a precomputed routing.
           --cuda_graphs=True (CUDA only) adds the whole layer captured as CUDA graphs, the GPU's pace
           without the host's launches, and the host's time to enqueue one eager and one graphed step
  sweep    T, d and n*K fixed while experts get finer (n halves, K and E double): memory and TFLOPS
  kernels  one layer's forward+backward under torch.profiler: each kernel's calls, time and share,
           and the host's time to enqueue the layer against the GPU's time to run it; on a GPU, each
           sonic expert GEMM's TFLOPS beside cuBLAS's on a dense GEMM of the same size, the two timed
           in the same passes (each pass: the layer, then the dense GEMMs), after a warm-up long
           enough for the clock to settle
  train    full training steps of the GPT for each backend: tokens/s, MFU, peak memory, and the spread
           of the timed steps (each one in the JSON, in order, beside its busiest expert's load over the
           mean: as the weights train, the routing and with it the step's time move)
  profile  training steps of the GPT under torch.profiler, split into attention, the MoE layers'
           router, routing and experts, norms and residuals, embeddings and head, loss, optimizer,
           communication and device idle time: ms per step and % of the step, and beside it the same
           steps unprofiled, less their kernels' time: the device's wait in a real step. Eager, ranges mark the
           parts; with compile (a config's) the step is torch.compile's default one, never replayed as CUDA
           graphs (a config's compile_mode is not taken), and the ops that launch its kernels name the parts.
           Under torchrun, as DDP (train.py's wrapper and its global gradient_accumulation_steps), rank 0
           reporting; then also the communication that no other kernel overlaps
  load     heatmaps of the per-expert load that train.py logs to expert_load.jsonl
  curves   train and val loss against iteration from train.py's log.jsonl files, one line per run
Each mode writes out_dir/<mode>.json (numbers, device, versions, command line), and every mode but
train and kernels PNG plots too. As in train.py, fp32 matmuls run on TF32 (the fp32 router logits of the
torch and grouped_mm backends; sonic's router has its own router_dtype); the checks run without it.

On the GPU:
  python bench.py                                                  # layer mode, the paper's 12 shapes
  python bench.py --shapes=rounding --routing=both                 # token rounding against top-K
  python bench.py --only=1.4B --backends=sonic --cuda_graphs=True  # is the layer host-bound?
  python bench.py --mode=sweep
  python bench.py --mode=kernels --only='7B 256' --backends=sonic
  python bench.py --mode=train --backends=sonic,grouped_mm
  python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic   # compiled, as the config says
  python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --compile=False
  torchrun --standalone --nproc_per_node=2 bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic \
      --gradient_accumulation_steps=2   # global, as in train.py: a multiple of the ranks
  python bench.py --mode=load --load_file=out-default/expert_load.jsonl
  python bench.py --mode=curves --log_files=out-a/log.jsonl,out-b/log.jsonl --labels=sonic,torch
On the CPU, tiny and slow (tests/test_bench.py does this); the sizes above would run for hours:
  python bench.py --tiny                                           # any mode takes --tiny
  TRITON_INTERPRET=1 python bench.py --tiny                        # sonic too, in Triton's interpreter
"""

import os
import gc
import sys
import json
import collections
import math
import pickle
import time
import shlex
import builtins
import platform
import statistics
from contextlib import nullcontext, contextmanager
from dataclasses import fields

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd import DeviceType
from torch.profiler import profile, ProfilerActivity, record_function
import matplotlib
matplotlib.use('Agg')  # files only, never a window
import matplotlib.pyplot as plt

import moe
from model import GPT, GPTConfig, clipped_fused_step, folds_clip
from moe import EXPERT_BACKENDS

# -----------------------------------------------------------------------------
mode = 'layer' # 'layer' | 'sweep' | 'kernels' | 'train' | 'profile' | 'load' | 'curves'
tiny = False # CPU-sized shapes and model (the sizes below take hours on a CPU); --tiny alone works too
device = 'auto' # 'auto' (cuda if available) | 'cuda' | 'cpu'
dtype = 'bfloat16' # 'bfloat16' | 'float16' | 'float32'; always float32 on CPU (the Triton interpreter has no bf16)
backends = 'sonic,torch,grouped_mm' # comma-separated keys of moe.EXPERT_BACKENDS
out_dir = 'bench_out' # JSON and PNG files go here
warmup = 25 # ms of warm-up per timing (triton.testing.do_bench)
rep = 100 # ms of timed runs per timing; the median is reported
min_runs = 5 # at least this many timed runs, whatever rep says
seed = 1337
# layer, sweep and kernels modes
shapes = 'paper' # 'paper' (12 shapes) | 'rounding' (E sweep at 7B widths) | 'TxD:n/E/K,...' e.g. '4096x512:64/8/4'
only = '' # keep only the shapes whose label contains this substring, e.g. '7B'
check = True # before timing, relative errors of output and grads against the torch backend in fp32
routing = 'topk' # 'topk' | 'rounding' (token rounding, nearest) | 'both'
rounding_tile = 128 # M_tile of token rounding
cuda_graphs = False # CUDA only, layer and sweep modes: also the layer as CUDA graphs, and the host's time per step
kernel_iters = 5 # kernels mode: profiled forward+backward passes of the layer
kernel_warm_ms = 2000 # kernels mode: untimed passes first, this long, so the clock settles as in training
kernels_top = 25 # kernels mode: rows of the kernel table; the rest are summed in one row
# sweep mode: T, d, n*K fixed; starts at n = sweep_nK/2, K = 2, E = sweep_E0 and halves n down to sweep_n_min
sweep_T = 24576
sweep_d = 1536
sweep_nK = 2048
sweep_E0 = 32
sweep_n_min = 128
# train and profile modes: a mid-size MoE GPT (GPT-2 small widths, 64 experts of width 256, top-8)
config_file = '' # a train.py config file, e.g. configs/h200_moe.py: its model and batch settings replace these
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
vocab_size = 50304 # random tokens'; with a dataset, its meta.pkl's, as in train.py
router_type = 'softmax_topk' # see moe.ROUTER_TYPES
learning_rate = 6e-4 # as training moves the weights the router's choices move, and the experts' loads with them: the
                     # default's steps rise ~1-2% after some ten steps; with 0 the weights stay and so do the steps
weight_decay = 0.1
grad_clip = 1.0 # clip the gradients at this norm, as train.py does (inside TritonAdamW's step on CUDA); 0: off
expert_copies = True # as train.py's: sonic under 16-bit autocast with TritonAdamW reads bf16 copies AdamW writes
kernel_grad_norm = True # as train.py's: sonic in one process, the clip inside AdamW: the norm takes the expert
                        # gradients' sums of squares from the kernels that write them
compile = False # torch.compile the model (train and profile modes; compiled, the profile splits the step by op and kernel)
burnin = 5 # untimed steps (autotuning, allocator warm-up)
steps = 10 # timed steps
profile_steps = 3 # profile mode: profiled steps after burnin
ddp_bucket_mb = 25.0 # profile mode under torchrun: DDP's gradient buckets (MiB), as train.py's key
# load mode
load_file = 'out/expert_load.jsonl' # written by train.py into its out_dir
# curves mode
log_files = '' # comma-separated log.jsonl files that train.py writes into its out_dir
labels = '' # comma-separated names for them; '' uses each file's folder name
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
# --tiny and config_file replace defaults before the configurator runs, so --key=value flags still
# override them. --tiny: every mode at a size a CPU runs in seconds; sonic runs on the CPU only in
# Triton's interpreter (TRITON_INTERPRET=1, read when sonic_kernels is imported), and grouped_mm not at all
TINY = dict(shapes='64x32:16/4/2,64x32:16/8/4', warmup=1, rep=1, min_runs=1, sweep_T=48, sweep_d=32, sweep_nK=64,
            sweep_E0=4, sweep_n_min=16, kernel_iters=2, kernel_warm_ms=0, batch_size=2, block_size=16, n_layer=2, n_head=2,
            n_embd=32, n_expert=4, top_k=2, expert_size=16, vocab_size=64, burnin=1, steps=2, profile_steps=2,
            **({} if torch.cuda.is_available() else
               dict(backends='torch,sonic' if os.environ.get('TRITON_INTERPRET') == '1' else 'torch')))
# a train.py config file sets these; its other settings (out_dir, max_iters, ...) are train.py's own
TRAIN_FILE_KEYS = {f.name for f in fields(GPTConfig)} | {'batch_size', 'gradient_accumulation_steps', 'dataset',
                                                         'learning_rate', 'weight_decay', 'dtype', 'grad_clip',
                                                         'expert_copies', 'kernel_grad_norm', 'compile'}
model_extra = {} # GPTConfig fields from config_file that bench.py has no setting for (n_shared_experts, ...)


def apply_train_config(path):
    """Reads a train.py config file as train.py does (a python file of assignments) and takes its
    model and batch settings: GPTConfig's fields, batch_size, dataset, ...; moe_backend becomes
    backends and token_rounding the routing."""
    try:
        src = open(path, encoding='utf-8').read()
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"bench: cannot read config_file={path!r} ({getattr(e, 'strerror', None) or e}); "
                         f"pass a train.py config such as configs/h200_moe.py")
    ns = {}
    try:
        exec(builtins.compile(src, path, 'exec'), ns)  # bench's compile setting shadows the builtin
    except Exception as e:
        raise SystemExit(f"bench: config_file {path}: {type(e).__name__}: {e}")
    taken = {k: v for k, v in ns.items() if k in TRAIN_FILE_KEYS}
    for k, v in taken.items():
        if k == 'moe_backend':
            k, v = 'backends', v
        elif k == 'token_rounding':
            k, v = 'routing', 'rounding' if v else 'topk'
        elif k == 'dtype' and v == 'auto':
            continue
        if k not in globals():
            model_extra[k] = v  # GPTConfig checks it
        elif not (type(v) is type(globals()[k]) or type(v) is int and type(globals()[k]) is float):
            raise SystemExit(f"bench: config_file {path}: {k}={v!r} must be a {type(globals()[k]).__name__}")
        else:
            globals()[k] = v
    print(f"from {path}: " + ', '.join(f"{k}={v!r}" for k, v in taken.items()))


if __name__ == '__main__':  # importing bench (tests, other scripts) must not parse their argv
    sys.argv = [a + '=True' if a == '--tiny' else a for a in sys.argv]  # a bare flag, for the configurator
    if '--tiny=True' in sys.argv:
        globals().update(TINY)
    for _a in sys.argv[1:]:  # '_': the configurator takes every public global as a key
        if _a.startswith('--config_file=') and _a.split('=', 1)[1].strip('\'"'):
            apply_train_config(_a.split('=', 1)[1].strip('\'"'))
    exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configurator.py')).read())
config = {k: globals()[k] for k in config_keys}
# -----------------------------------------------------------------------------

device = ('cuda' if torch.cuda.is_available() else 'cpu') if device == 'auto' else device
try:
    moe.require_device(device)
    device_type = torch.device(device).type
except RuntimeError as e:
    raise SystemExit(f"bench: {e}")
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
dtype_asked = dtype # checked in main, whatever the device
dtype = dtype if device_type == 'cuda' else 'float32' # the CPU runs the kernels in the interpreter: fp32
dt = DTYPES.get(dtype)
backend_names = [b for b in backends.split(',') if b]
# under torchrun (profile mode only): every rank a DDP replica as in train.py; rank 0 prints and writes
ddp = __name__ == '__main__' and int(os.environ.get('RANK', -1)) != -1
rank, world_size = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
if ddp:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    if mode != 'profile':
        raise SystemExit(f"bench: mode={mode!r} runs in one process; under torchrun only mode=profile runs (as DDP)")
    if ddp_bucket_mb <= 0:
        raise SystemExit(f"bench: ddp_bucket_mb={ddp_bucket_mb}; use a positive size in MiB (25 is DDP's default)")
    if gradient_accumulation_steps % world_size:
        raise SystemExit(f"bench: gradient_accumulation_steps={gradient_accumulation_steps} is global, as in "
                         f"train.py, and must be divisible by the {world_size} ranks")
    gradient_accumulation_steps //= world_size
    if device_type == 'cuda':
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend='nccl' if device_type == 'cuda' else 'gloo')
    if rank:
        print = lambda *args, **kwargs: None  # noqa: E731  (rank 0 reports for all)
data_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', dataset, 'train.bin')
meta_path = os.path.join(os.path.dirname(data_path), 'meta.pkl')
if dataset and os.path.exists(meta_path):  # a dataset's vocabulary, as train.py takes it (stdlib's: 256 bytes)
    with open(meta_path, 'rb') as f:
        vocab_size = config['vocab_size'] = pickle.load(f)['vocab_size']

# The SonicMoE paper's shapes, (T, d) per model size, and its H100 SXM bf16 TFLOPS (fwd, bwd) of the
# whole layer (SonicMoE's benchmark times its softmax-top-K layer, router included)
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


def expert_gemms(T, d, n, E, K):
    """The expert GEMMs of one sonic layer's forward+backward under top-K routing (R = T*K rows), by
    kernel, as the (M, N, K, batch) of dense GEMMs doing the same FLOPs: what kernels mode times
    cuBLAS on beside each kernel. Their FLOPs add up to moe_flops' 'both'. The weight gradients are
    E GEMMs over R/E rows each, as if the routing were balanced."""
    R = T * K
    return {'_up_swiglu_kernel': [(R, 2 * n, d, 1)],                    # h = X[gather] @ W1
            '_grouped_mm_kernel': [(R, d, n, 1), (R, d, 2 * n, 1)],       # y = a @ W2; dX~ = dH @ W1^T
            '_down_bwd_kernel': [(R, n, d, 1)],                           # dA' = dO[gather] @ W2^T
            '_wgrad_kernel': [(n, d, R // E, E), (d, 2 * n, R // E, E)]}  # dW2 = A'^T @ dO; dW1 = X^T @ dH


# the same GEMMs by another kernel: sm_90's warp-specialised twins in sonic_kernels
GEMM_ALIASES = {'_wgrad_hopper_kernel': '_wgrad_kernel', '_down_bwd_hopper_kernel': '_down_bwd_kernel',
                '_grouped_mm_hopper_kernel': '_grouped_mm_kernel', '_up_hopper_kernel': '_up_swiglu_kernel'}


def gemm_flops(gemms):
    return sum(2 * M * N * Kd * b for M, N, Kd, b in gemms)


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
    CPU: a timer loop after one untimed run, at least min_runs runs and about rep ms."""
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
    while len(times) < max(1, min_runs) or (sum(times) < rep and len(times) < 100):
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
# layer, sweep and kernels modes

# the sets of columns: what a training step runs, the same layer replayed as CUDA graphs (--cuda_graphs),
# and one part of it
PARTS = {'layer': "whole MoE layer, as a training step runs it: router, routing, experts and balancing loss",
         'graphed': "whole MoE layer as CUDA graphs (torch.cuda.make_graphed_callables of its forward and "
                    "backward): the GPU's pace without the host's launches; not what an eager training step "
                    "runs; no MiB (the graphs' pools hold static memory)",
         'experts_only': "experts only (a part): the experts alone on a precomputed routing, router not run; "
                         "not comparable with a whole layer"}
if not cuda_graphs:
    del PARTS['graphed']


def layer_module(name, T, d, n, E, K, route):
    """The whole MoE layer as a user's training step runs it: MoE(GPTConfig(...)) with the training
    defaults otherwise (softmax_topk router, balancing loss on), in train mode, its parameters in the
    bench dtype, and an input x (T, d) that needs a gradient. Returns the layer, x, a backward(out)
    that runs autograd from the output (gradient dout) and the balancing loss, and step(): forward
    then backward. The same seed gives every backend the same weights, input and routing."""
    torch.manual_seed(seed)
    cfg = GPTConfig(n_embd=d, n_head=1, n_expert=E, top_k=K, expert_size=n, moe_backend=name,  # n_head: unused
                    token_rounding=route == 'rounding', rounding_tile=rounding_tile)
    layer = moe.MoE(cfg).to(device=device, dtype=dt).train()
    x = torch.randn(T, d, device=device, dtype=dt, requires_grad=True)
    dout = torch.randn(T, d, device=device, dtype=dt)

    def backward(out, retain_graph=False):
        aux = layer.aux_loss
        torch.autograd.backward([out, aux], [dout, torch.ones_like(aux)], retain_graph=retain_graph)

    def step():
        backward(layer(x))
    return layer, x, backward, step


def layer_inputs(T, d, n, E, K, route):
    """The experts-only inputs: x, w1, w2 and one routing, all random (std 1 inputs, weights scaled so
    activations stay O(1)); the same seed gives every backend and both routings the same data. Returns
    (x, w1, w2, pair_tok, pair_exp, pair_score), a fixed output gradient dy, and R, the number of valid pairs."""
    torch.manual_seed(seed)
    x = torch.randn(T, d, device=device, dtype=dt).requires_grad_()
    w1 = (torch.randn(E, d, 2 * n, device=device, dtype=dt) / math.sqrt(d)).requires_grad_()
    w2 = (torch.randn(E, n, d, device=device, dtype=dt) / math.sqrt(n)).requires_grad_()
    # fp32 router logits from a CPU generator: the same routing, so the same expert counts, on every device
    logits = torch.randn(T, E, generator=torch.Generator().manual_seed(seed)).to(device)
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


def leaves_of(args):
    return [args[0], args[1], args[2], args[5]]                          # x, w1, w2, pair_score


def clear_grads(leaves):
    for t in leaves:
        t.grad = None


def reference(args, dy):
    """Output and grads (x, w1, w2, pair_score) of the torch backend in fp32 on the same inputs."""
    x, w1, w2, pt, pe, ps = [t.detach().float().requires_grad_() if t.is_floating_point() else t for t in args]
    with tf32_off():
        out = moe.experts_torch(x, w1, w2, pt, pe, ps)
        out.backward(dy.float())
    return [out.detach(), x.grad, w1.grad, w2.grad, ps.grad]


# The checks (the fp32 reference and the checked pass) run without TF32, which the timed runs use as train.py
# does: it would put ~1e-3 of error into the reference and into an fp32 torch row. Without Triton, no switch to share
tf32_off = moe.sonic_kernels.no_tf32 if moe.sonic_kernels is not None else nullcontext


def memory_mib(forward, backward, leaves):
    """MiB alive after forward() (its output kept; the inputs and parameters, allocated before, are
    not counted) and peak MiB during forward and backward(out), both above the baseline before
    forward. None off CUDA."""
    if device_type != 'cuda':
        return None, None
    clear_grads(leaves)  # the gradients are allocated during backward, as in training
    free_memory()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = forward()
    torch.cuda.synchronize()
    after_fwd = torch.cuda.memory_allocated() - base
    backward(out)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    clear_grads(leaves)
    return after_fwd / 2**20, peak / 2**20


def add_tflops(part, flops):
    for k in ('fwd', 'bwd', 'both'):
        ms = part.get(f'{k}_ms')
        part[f'{k}_tflops'] = None if ms is None else flops[k] / (ms * 1e-3) / 1e12
    return part


def run_layer(name, T, d, n, E, K, route):
    """Memory and timing of the whole layer (layer_module) for one backend; returns a dict of numbers."""
    layer, x, backward, step = layer_module(name, T, d, n, E, K, route)
    leaves = [x, *layer.parameters()]
    step()  # the first pass also compiles and autotunes the Triton kernels
    part = dict(pairs=int(layer.tokens_per_expert.sum()))  # valid pairs (token rounding moves them); synced once
    part['mib_fwd'], part['mib_peak'] = memory_mib(lambda: layer(x), backward, leaves)  # aux_loss alive too
    part['fwd_ms'] = bench_ms(lambda: layer(x))
    out = layer(x)  # backward alone: one fixed forward graph, run again and again
    part['bwd_ms'] = bench_ms(lambda: backward(out, retain_graph=True), leaves)
    del out
    part['both_ms'] = bench_ms(step, leaves)
    if cuda_graphs:  # beside the graphed layer's: the host's share of the eager step
        part['host_ms'] = host_ms(step, leaves)
    layer.aux_loss = None
    return add_tflops(part, moe_flops(part['pairs'], d, n))


def host_ms(fn, leaves):
    """Median milliseconds the host takes to enqueue fn() (a forward+backward), the GPU drained before
    each call and no sync after it. Above the GPU's time for the same call, the host's launches, not the
    GPU, set the pace."""
    times = []
    for _ in range(15):
        clear_grads(leaves)  # as after a training step's zero_grad
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    torch.cuda.synchronize()
    clear_grads(leaves)
    return statistics.median(times)


class WithAux(torch.nn.Module):
    """The layer with its balancing loss as a second output: a CUDA graph replays kernels and runs no
    Python, so the loss must be one of the graph's outputs for backward to reach it."""
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        out = self.layer(x)
        return out, self.layer.aux_loss


def run_graphed(name, T, d, n, E, K, route):
    """Forward and forward+backward times of the whole layer (layer_module) with its forward and its
    backward each captured as one CUDA graph (torch.cuda.make_graphed_callables), and whether the graphs give one eager step's output,
    balancing loss and gradients (x and every parameter) bit for bit. Memory is not measured: the graphs'
    pool holds static memory. A backend with a host sync in its layer cannot be captured: it raises."""
    layer, x, backward, step = layer_module(name, T, d, n, E, K, route)
    leaves = [x, *layer.parameters()]
    step()  # compiles and autotunes the Triton kernels, outside the capture
    part = dict(pairs=int(layer.tokens_per_expert.sum()), mib_fwd=None, mib_peak=None)
    clear_grads(leaves)
    out = layer(x)
    backward(out)
    eager = [out.detach(), layer.aux_loss.detach()] + [t.grad for t in leaves]
    # no eager autograd graph may stay alive: it holds x's AccumulateGrad node, which breaks the capture
    del out
    layer.aux_loss = None
    clear_grads(leaves)
    graphs = torch.cuda.make_graphed_callables(WithAux(layer), (x,), num_warmup_iters=3)

    def graphed(x):  # as layer(x): the output, and the balancing loss in layer.aux_loss for backward()
        out, layer.aux_loss = graphs(x)
        return out
    # the graphs write their outputs and gradients into static buffers: compare before the next replay
    out = graphed(x)
    backward(out)
    got = [out, layer.aux_loss] + [t.grad for t in leaves]
    part['same_as_eager'] = all(torch.equal(a, b) for a, b in zip(eager, got))
    del eager, got, out
    part['fwd_ms'] = bench_ms(lambda: graphed(x))
    # no backward alone: replayed again and again after one graphed forward (retain_graph), as the eager
    # part is timed, the backward graph faulted with an illegal memory access at 1.4B on the H200
    # (docs/LOG.md, 2026-12-02). Most likely cause, not proven: captured without retain_graph, it frees
    # the forward's saved tensors (the int32 routing indices among them) as it goes and reuses their
    # memory, so a second replay reads what the first wrote there. After each forward it replays correctly
    part['bwd_ms'] = None
    part['both_ms'] = bench_ms(lambda: backward(graphed(x)), leaves)
    part['host_ms'] = host_ms(lambda: backward(graphed(x)), leaves)
    layer.aux_loss = None
    return add_tflops(part, moe_flops(part['pairs'], d, n))


def run_experts(name, args, dy, R, d, n, ref):
    """Check, memory and timing of one backend's experts alone on fixed inputs and routing."""
    fn, leaves, part = EXPERT_BACKENDS[name], leaves_of(args), dict(pairs=R)
    clear_grads(leaves)
    with tf32_off():  # the checked pass; it also compiles and autotunes the Triton kernels
        out = fn(*args)
        out.backward(dy)
    if ref is not None:
        part['err'] = {k: rel_err(a, b) for k, a, b in zip(ERR_KEYS, [out] + [t.grad for t in leaves], ref)}
        part['check_ok'] = max(part['err'].values()) < CHECK_TOL[dt]
        print(f"  check {name:<11}" + ' '.join(f"{k} {v:.1e}" for k, v in part['err'].items())
              + ('' if part['check_ok'] else f"  FAILED: above {CHECK_TOL[dt]:.0e}"))
    del out
    part['mib_fwd'], part['mib_peak'] = memory_mib(lambda: fn(*args), lambda out: out.backward(dy), leaves)
    part['fwd_ms'] = bench_ms(lambda: fn(*args))
    out = fn(*args)  # backward alone: one fixed forward graph, run again and again
    part['bwd_ms'] = bench_ms(lambda: out.backward(dy, retain_graph=True), leaves)
    del out
    part['both_ms'] = bench_ms(lambda: fn(*args).backward(dy), leaves)
    return add_tflops(part, moe_flops(R, d, n))


def bench_shape(label, T, d, n, E, K, route):
    """One row per backend for one shape and one routing: the whole layer and the experts only."""
    args, dy, R = layer_inputs(T, d, n, E, K, route)
    print(f"{label} [{route}]: T={T} d={d} n={n} E={E} K={K}, {R} routed rows in the experts-only inputs")
    ref = reference(args, dy) if check and R else None
    # what sonic_kernels' memory contract allows after forward: h, metadata and the output (x's size)
    contract = None if moe.sonic_kernels is None else \
        moe.sonic_kernels.saved_bytes_formula(T, d, n, args[4].numel(), E, dt.itemsize) / 2**20
    rows = []
    for name in backend_names:
        row = dict(label=label, T=T, d=d, n=n, E=E, K=K, routing=route, backend=name, mib_contract=contract)
        for key in PARTS:
            try:
                if key == 'layer':
                    row[key] = run_layer(name, T, d, n, E, K, route)
                elif key == 'graphed':
                    row[key] = run_graphed(name, T, d, n, E, K, route)
                elif R == 0:  # token rounding with fewer tokens than a tile rounds every expert to 0
                    row[key] = dict(error=f"no routed rows: token rounding rounds every expert to 0 when "
                                          f"T={T} < rounding_tile={rounding_tile}")
                else:
                    row[key] = run_experts(name, args, dy, R, d, n, ref)
            except Exception as e:  # OOM, grouped_mm off the GPU, a kernel that fails to compile: record it, go on
                row[key] = dict(error=short(e))
            if 'error' in row[key]:
                print(f"  {name} {key}: {row[key]['error']}")
            elif name == 'sonic' and contract and row[key]['mib_fwd'] is not None:
                row[key]['mib_fwd_over_contract'] = row[key]['mib_fwd'] / contract
            clear_grads(leaves_of(args))
            free_memory()
        rows.append(row)
    for key in PARTS:  # each part against grouped_mm's same part: graphed against graphed
        base = next((r[key] for r in rows if r['backend'] == 'grouped_mm' and 'error' not in r[key]), None)
        for r in rows:
            if base is not None and 'error' not in r[key]:
                r[key]['speedup_vs_grouped_mm'] = base['both_ms'] / r[key]['both_ms']
    del args, dy, ref
    free_memory()
    return rows


def print_table(rows):
    cols = [('fwd ms', 'fwd_ms', '.3f'), ('TFLOPS', 'fwd_tflops', '.3g'), ('bwd ms', 'bwd_ms', '.3f'),
            ('TFLOPS', 'bwd_tflops', '.3g'), ('f+b TF', 'both_tflops', '.3g'), ('MiB fwd', 'mib_fwd', '.0f'),
            ('MiB peak', 'mib_peak', '.0f'), ('/contract', 'mib_fwd_over_contract', '.2f'),
            ('vs gmm', 'speedup_vs_grouped_mm', '.2f')]
    extra = [('f+b ms', 'both_ms', '.3f'), ('host ms', 'host_ms', '.3f'), ('=eager', 'same_as_eager', '')]
    for key, title in PARTS.items():
        shown = cols + ([c for c in extra if any(c[1] in r[key] for r in rows)] if cuda_graphs else [])
        print(f"\n{title}")
        print(f"{'shape':<22}{'routing':<9}{'backend':<11}" + ''.join(f"{c:>10}" for c, _, _ in shown))
        for r in rows:
            p, head = r[key], f"{r['label']:<22}{r['routing']:<9}{r['backend']:<11}"
            print(head + (p['error'][:90] if 'error' in p else
                          ''.join(f"{fmt(p.get(k), spec):>10}" for _, k, spec in shown)
                          + ('' if p.get('check_ok', True) else '  CHECK FAILED')))
    print("TFLOPS count the experts' 6*R*n*d forward and 12*R*n*d backward FLOPs (R routed rows), not the "
          "router's; the router's time is in the whole layer's. /contract: sonic's MiB alive after forward over "
          "its memory contract, h + output + metadata (sonic_kernels.saved_bytes_formula)")
    if cuda_graphs:
        print("host ms: the host's time to enqueue one forward+backward (GPU idle before, no sync after); above "
              "f+b ms, the host's launches set the pace. =eager: the graphs' output, balancing loss and gradients "
              "are bitwise those of one eager step")


def dense_inputs(gemms):
    """{kernel: [(a, b) of each of its dense GEMMs]}: random inputs of expert_gemms' sizes, for cuBLAS."""
    return {k: [(torch.randn(b, M, Kd, device=device_type, dtype=dt), torch.randn(b, Kd, N, device=device_type, dtype=dt))
                for M, N, Kd, b in g] for k, g in gemms.items()}


CUBLAS_RANGE = 'cublas:'  # kernels mode's record_function range around each dense GEMM: '<prefix><kernel>:<i>'


def dense_mm(a, w, label):
    """torch.mm, or torch.bmm for a batch (cuBLAS), inside a profiler range named label: its device time is the
    time of the kernels it launched, measured as the expert kernels' are. CUDA events around it would also count
    any wait for the host's launch: just after a layer that the host paces, the device is idle when the start
    event is enqueued, and the first dense GEMM of a pass read up to a third low in some passes (docs/LOG.md,
    2026-12-06)."""
    with record_function(label):
        torch.bmm(a, w) if a.shape[0] > 1 else torch.mm(a[0], w[0])


def warm_up(fn, ms):
    """Runs fn() again and again for about ms milliseconds, at most two calls queued ahead of the device (a
    sync on each would leave it idle while the host enqueues the next), so that its clock settles at what
    that load holds: an idle GPU starts at its highest clock, and a sustained load can pull it down by a
    fifth (the power cap)."""
    t0, queued = time.perf_counter(), []
    while (time.perf_counter() - t0) * 1e3 < ms:
        fn()
        if device_type == 'cuda':
            queued.append(torch.cuda.Event())
            queued[-1].record()
            if len(queued) > 2:
                queued.pop(0).synchronize()
    if device_type == 'cuda':
        torch.cuda.synchronize()


def kernel_totals(fn, iters, prefix=None):
    """Runs fn() iters times under the profiler: {kernel name: its CUDA microseconds over the runs}, and
    {range name: [its kernels' CUDA microseconds, each time it ran]} for the record_function ranges whose
    names start with prefix."""
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        if device_type == 'cuda':
            torch.cuda.synchronize()
    totals, ranges = collections.Counter(), collections.defaultdict(list)
    for e in prof.events():
        if prefix and e.name.startswith(prefix):   # the range on the host, and its span on the device
            if e.device_type == DeviceType.CPU:
                ranges[e.name].append(e.device_time_total)
        elif e.device_type == DeviceType.CUDA and not e.is_async:
            totals[e.name] += e.time_range.elapsed_us()
    return totals, ranges


def kernel_profile(name, T, d, n, E, K, route):
    """One layer's forward+backward (layer_module) under torch.profiler, after kernel_warm_ms of untimed
    passes: time per kernel (CUDA) or per op (CPU: each op's self time, so nested ops count once), and
    the host's time to enqueue the layer (no sync) against the device's time to run it (CUDA events).
    On a GPU, for sonic under top-K, each expert GEMM's TFLOPS and cuBLAS's on a dense GEMM of its
    size, from passes that run both (its ms there is ms_beside_cublas)."""
    layer, x, backward, step = layer_module(name, T, d, n, E, K, route)
    leaves = [x, *layer.parameters()]

    def run():
        clear_grads(leaves)
        step()
    run()  # compiles and autotunes
    cuda = device_type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    # each expert GEMM beside cuBLAS on a dense GEMM of its size: on a GPU, for sonic under top-K
    dense = dense_inputs(expert_gemms(T, d, n, E, K)) if cuda and name == 'sonic' and route == 'topk' else {}

    def run_dense():   # the layer, then each dense GEMM in a profiler range
        run()
        for k, pairs in dense.items():
            for i, (a, b) in enumerate(pairs):
                dense_mm(a, b, f"{CUBLAS_RANGE}{k}:{i}")
    warm_up(run_dense, kernel_warm_ms)
    enqueue, run_ms = [], []
    for _ in range(max(3, kernel_iters)):
        sync()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        run()
        enqueue.append((time.perf_counter() - t0) * 1e3)
        if cuda:
            end.record()
            sync()
        run_ms.append(start.elapsed_time(end) if cuda else enqueue[-1])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(kernel_iters):
            run()
        sync()
    layer.aux_loss = None
    totals, spans = {}, []  # name -> [calls, microseconds]; (start, end) of what ran
    for e in prof.events():
        if e.device_type == (DeviceType.CUDA if cuda else DeviceType.CPU) and not e.is_async:
            t = totals.setdefault(e.name, [0, 0.0])
            t[0] += 1
            t[1] += e.time_range.elapsed_us() if cuda else e.self_cpu_time_total
            if cuda or e.cpu_parent is None:
                spans.append((e.time_range.start, e.time_range.end))
    busy = sum(us for _, us in totals.values())
    kernels = sorted(({'name': k, 'calls': c / kernel_iters, 'ms': us / kernel_iters / 1e3,
                       'mean_us': us / c, 'share': us / busy} for k, (c, us) in totals.items()),
                     key=lambda r: -r['ms'])
    if dense:
        # A second profiled run in which each pass runs the layer and then cuBLAS's dense GEMMs: both at the
        # clock the same load sets. cuBLAS timed apart (do_bench) ran at a lower clock than the layer's kernels
        # in a short profile just after an idle GPU, and that read the up-projection at 1.4B and 7B ~15% nearer
        # cuBLAS than timed side by side (docs/LOG.md, 2026-12-04)
        ours, ranges = kernel_totals(run_dense, kernel_iters, CUBLAS_RANGE)
        gemms = expert_gemms(T, d, n, E, K)
        for k in kernels:
            g = GEMM_ALIASES.get(k['name'], k['name'])
            if g in gemms and k['name'] in ours:
                k['ms_beside_cublas'] = ours[k['name']] / kernel_iters / 1e3
                k['tflops'] = gemm_flops(gemms[g]) / (k['ms_beside_cublas'] * 1e9)
                # each dense GEMM's median over the passes, summed over the kernel's GEMMs
                ms = sum(statistics.median(ranges[f"{CUBLAS_RANGE}{g}:{i}"]) for i in range(len(gemms[g]))) / 1e3
                k['cublas_tflops'] = gemm_flops(gemms[g]) / (ms * 1e9)
    # busy_ms sums the table; busy_span_ms is the time anything ran, each moment once: the two agree
    # unless kernels overlap (several streams), or, on the CPU, an op were counted with its children
    return dict(kernels=kernels, busy_ms=busy / kernel_iters / 1e3, busy_span_ms=union_us(spans) / kernel_iters / 1e3,
                run_ms=statistics.median(run_ms), enqueue_ms=statistics.median(enqueue))


def print_kernels(label, route, name, r):
    what = 'kernel' if device_type == 'cuda' else 'op (CPU self time)'
    print(f"\n{label} [{route}] {name}: one whole layer's forward+backward, per {what}")
    gemm = any('tflops' in k for k in r['kernels'])
    print(f"{'name':<64}{'calls':>7}{'ms':>9}{'mean us':>10}{'share':>8}"
          + (f"{'TFLOPS':>8}{'cuBLAS':>8}{'ratio':>7}" if gemm else ''))
    rest = r['kernels'][kernels_top:]
    shown = r['kernels'][:kernels_top] + ([dict(name=f'({len(rest)} more)', calls=sum(k['calls'] for k in rest),
                                                ms=sum(k['ms'] for k in rest), mean_us=None,
                                                share=sum(k['share'] for k in rest))] if rest else [])
    for k in shown:
        nm = k['name'] if len(k['name']) <= 62 else k['name'][:59] + '...'
        print(f"{nm:<64}{k['calls']:7.3g}{k['ms']:9.3f}{fmt(k['mean_us'], '10.1f'):>10}{100 * k['share']:7.1f}%"
              + (f"{k['tflops']:8.0f}{k['cublas_tflops']:8.0f}{k['tflops'] / k['cublas_tflops']:7.2f}" if 'tflops' in k else ''))
    print(f"{'sum':<64}{sum(k['calls'] for k in shown):7.3g}{r['busy_ms']:9.3f}{'':>10}{100 * sum(k['share'] for k in shown):7.1f}%")
    dev = 'GPU' if device_type == 'cuda' else 'CPU'
    print(f"layer: host enqueue {r['enqueue_ms']:.3f} ms (no sync), {dev} {r['run_ms']:.3f} ms from start to end, "
          f"{dev} busy {r['busy_ms']:.3f} ms (the profiled sum above; {r['busy_span_ms']:.3f} ms counting overlaps once)"
          + (f"; the host is the bottleneck when enqueue >= {dev} time" if device_type == 'cuda' else ''))
    if gemm:
        print("TFLOPS: an expert GEMM kernel's, over bench.expert_gemms' FLOPs; cuBLAS: torch.mm/bmm on dense "
              "inputs of the same sizes (no gather, no expert segments); both from a second profiled run whose "
              "passes each run the layer, then the dense GEMMs")


def run_info():
    name = torch.cuda.get_device_name() if device_type == 'cuda' else (platform.processor() or 'cpu')
    triton_version = moe.sonic_kernels.triton.__version__ if moe.sonic_kernels else None
    return dict(device=name, torch=torch.__version__, triton=triton_version, dtype=dtype,
                triton_interpret=os.environ.get('TRITON_INTERPRET', '0'), tf32=torch.backends.cuda.matmul.allow_tf32,
                command=' '.join(['python'] + [shlex.quote(a) for a in sys.argv]), config=config)


def write_json(name, payload):
    # written after every shape or backend, to a temporary file then renamed: a crash loses nothing
    path = os.path.join(out_dir, name)
    if rank:  # under torchrun, rank 0 writes
        return path
    with open(path + '.tmp', 'w') as f:
        json.dump(dict(run_info(), **payload), f, indent=1)
    os.replace(path + '.tmp', path)
    return path


def save(fig, png):
    if rank:
        plt.close(fig)
        return
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"wrote {png}")


def plot_layer(rows, tflops_png, memory_png):
    """Per shape, one panel for the whole layer and one for the experts only: grouped bars of fwd
    (solid) and bwd (hatched) TFLOPS per backend, the paper's SonicMoE H100 numbers beside the whole
    layer; and MiB alive after forward per backend, with the memory contract."""
    groups = list(dict.fromkeys((r['label'], r['routing']) for r in rows))
    get = {(r['label'], r['routing'], r['backend']): r for r in rows}
    xlabels = [lab + (' rounded' if route == 'rounding' else '') for lab, route in groups]
    x = np.arange(len(groups))
    figs = [plt.subplots(len(PARTS), 1, figsize=(max(8, 1.4 * len(groups)), 4.5 * len(PARTS)), squeeze=False)
            for _ in range(2)]
    for (key, title), ax_t, ax_m in zip(PARTS.items(), figs[0][1][:, 0], figs[1][1][:, 0]):
        names = list(dict.fromkeys(r['backend'] for r in rows if 'error' not in r[key]))  # failed ones get no bars
        val = lambda g, b, k: (get.get((*g, b), {}).get(key) or {}).get(k) or 0.0
        series = [(b, [val(g, b, 'fwd_tflops') for g in groups], [val(g, b, 'bwd_tflops') for g in groups]) for b in names]
        paper = [SONIC_H100.get(g[0]) if g[1] == 'topk' and key == 'layer' else None for g in groups]
        if any(paper):
            series.append((REF_NAME, [p[0] if p else 0 for p in paper], [p[1] if p else 0 for p in paper]))
        w = 0.8 / max(1, 2 * len(series))
        for i, (b, fwd, bwd) in enumerate(series):
            color = 'gray' if b == REF_NAME else f'C{i}'
            ax_t.bar(x - 0.4 + (2 * i + 0.5) * w, fwd, w, color=color, label=f'{b} fwd')
            ax_t.bar(x - 0.4 + (2 * i + 1.5) * w, bwd, w, color=color, alpha=0.5, hatch='//', label=f'{b} bwd')
        ax_t.set_ylabel('TFLOPS')
        ax_t.set_title(f'{title.split(":")[0]}, {dtype}, {run_info()["device"]}', fontsize=10)
        w = 0.8 / max(1, len(names))
        for i, b in enumerate(names):
            ax_m.bar(x - 0.4 + (i + 0.5) * w, [val(g, b, 'mib_fwd') for g in groups], w, color=f'C{i}', label=b)
        if rows[0].get('mib_contract') is not None:
            contract = [next(r['mib_contract'] for r in rows if (r['label'], r['routing']) == g) for g in groups]
            ax_m.scatter(x, contract, marker='_', s=2000 / len(groups), color='k', zorder=3,
                         label='memory contract (h + output + metadata)')
        if key == 'graphed':
            ax_m.text(0.5, 0.5, "not measured: the CUDA graphs' pool holds static memory", transform=ax_m.transAxes,
                      ha='center')
        elif not any((r[key] or {}).get('mib_fwd') for r in rows):
            ax_m.text(0.5, 0.5, 'no CUDA memory statistics on this device', transform=ax_m.transAxes, ha='center')
        ax_m.set_ylabel('MiB alive after forward (above inputs)')
        ax_m.set_title(f'{title.split(":")[0]}: activation memory', fontsize=10)
        for ax in (ax_t, ax_m):
            ax.set_xticks(x, xlabels, rotation=30, ha='right')
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, ncol=2)
    save(figs[0][0], tflops_png)
    save(figs[1][0], memory_png)


def sweep_shapes():
    """Constant T, d and n*K; n halves while K and E double: the iso-FLOPs granularity sweep."""
    n, K, E, out = sweep_nK // 2, 2, sweep_E0, []
    while n >= sweep_n_min:
        out.append((f'{sweep_T}x{sweep_d} {n}/{E}/{K}', sweep_T, sweep_d, n, E, K))
        n, K, E = n // 2, K * 2, E * 2
    return out


def plot_sweep(rows, png):
    """Memory and TFLOPS against granularity: the whole layer solid, as CUDA graphs (TFLOPS only)
    dash-dotted, the experts only (a part) dashed."""
    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(11, 4.5))
    styles = {'layer': ('o-', ''), 'graphed': ('^-.', ', CUDA graphs'), 'experts_only': ('s--', ', experts only')}
    for key in PARTS:
        style, suffix = styles[key]
        for i, b in enumerate(dict.fromkeys(r['backend'] for r in rows)):
            ok = [r for r in rows if r['backend'] == b and 'error' not in r[key]]
            G = [r['d'] / r['n'] for r in ok]
            label = b + suffix
            mem = [(g, r[key]['mib_fwd']) for g, r in zip(G, ok) if r[key]['mib_fwd'] is not None]
            if mem:
                ax_m.plot(*zip(*mem), style, color=f'C{i}', label=label)
            if ok:
                ax_t.plot(G, [r[key]['both_tflops'] for r in ok], style, color=f'C{i}', label=label)
    contract = {r['d'] / r['n']: r['mib_contract'] for r in rows if r.get('mib_contract') is not None}
    if contract:
        ax_m.plot(*zip(*sorted(contract.items())), 'k:', label='memory contract (h + output + metadata)')
    ticks = sorted({(r['d'] / r['n'], f"{r['n']}/{r['E']}/{r['K']}") for r in rows})
    for ax, yl in ((ax_m, 'MiB alive after forward'), (ax_t, 'TFLOPS fwd+bwd')):
        ax.set_xscale('log', base=2)
        ax.set_xticks([g for g, _ in ticks], [f'{g:g}\n{nek}' for g, nek in ticks])
        ax.minorticks_off()
        ax.set_xlabel('granularity d/n, and n/E/K (n*K fixed)')
        ax.set_ylabel(yl)
        if ax.get_lines():
            ax.legend(fontsize=7)
    if not any(r[k].get('mib_fwd') for r in rows for k in PARTS):
        ax_m.text(0.5, 0.5, 'no CUDA memory statistics on this device', transform=ax_m.transAxes, ha='center')
    fig.suptitle(f'Iso-FLOPs granularity sweep: T={sweep_T}, d={sweep_d}, n*K={sweep_nK}, {dtype}')
    save(fig, png)


# -----------------------------------------------------------------------------
# train, profile and load modes

def make_train_step(name, route, use_compile):
    """A fresh GPT (same seed for every backend), its fused AdamW, and step(): one optimizer step
    as train.py runs it, but never as CUDA graphs (forward under autocast, backward, the gradients clipped,
    their norm from the kernels' sums of squares and the experts' bf16 copies where train.py takes them,
    AdamW step) on random tokens or on data/<dataset>/train.bin.
    Returns (model, step); step() returns the last micro-batch's loss."""
    torch.manual_seed(seed)
    args = dict(block_size=block_size, vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                n_expert=n_expert, top_k=top_k, expert_size=expert_size, router_type=router_type,
                rounding_tile=rounding_tile, **model_extra)
    raw = GPT(GPTConfig(**dict(args, moe_backend=name, token_rounding=route == 'rounding'))).to(device)
    optimizer = raw.configure_optimizers(weight_decay, learning_rate, (0.9, 0.95), device_type)
    if expert_copies:  # where train.py keeps them
        raw.keep_expert_copies(optimizer, dt)
    # the gradient norm from the weight-gradient kernels where train.py takes it (one process, sonic)
    squares = None
    if moe.sonic_kernels is not None:
        squares = moe.sonic_kernels.GRAD_SQUARES = moe.sonic_kernels.GradSquares() if (
            kernel_grad_norm and name == 'sonic' and not ddp and grad_clip and folds_clip(optimizer)) else None
    net = raw
    if ddp:  # as train.py wraps it
        net = DDP(raw, device_ids=[torch.device(device).index] if device_type == 'cuda' else None,
                  broadcast_buffers=False, gradient_as_bucket_view=True, bucket_cap_mb=ddp_bucket_mb)
    net = torch.compile(net) if use_compile else net
    ctx = torch.autocast(device_type, dtype=dt) if device_type == 'cuda' and dt != torch.float32 else nullcontext()
    data = np.memmap(data_path, dtype=np.uint16, mode='r') if dataset else None

    def get_batch():
        if data is None:
            xy = torch.randint(vocab_size, (batch_size, block_size + 1), device=device)
            return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()
        ix = torch.randint(len(data) - block_size - 1, (batch_size,)).tolist()
        xy = torch.stack([torch.from_numpy(data[i:i + block_size + 1].astype(np.int64)) for i in ix])
        # pinned, as train.py: a copy from pageable memory makes the host wait for the device every step
        xy = xy.pin_memory().to(device, non_blocking=True) if device_type == 'cuda' else xy.to(device)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()

    def step():
        for i in range(gradient_accumulation_steps):
            with record_function(RANGE + 'data'):  # a no-op unless profile mode's profiler runs
                X, Y = get_batch()
            last = i == gradient_accumulation_steps - 1
            with (net.no_sync() if ddp and not last else nullcontext()):  # DDP all-reduces on the last
                with ctx:
                    _, loss = net(X, Y)
                (loss / gradient_accumulation_steps).backward()
        with record_function(RANGE + 'optimizer'):  # the gradient norm is the optimizer's part
            if grad_clip and folds_clip(optimizer):  # the norm, then the clip inside the update
                clipped_fused_step(optimizer, grad_clip, params=raw.parameters(), squares=squares)
            else:
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(raw.parameters(), grad_clip)
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return loss
    return raw, step


def norm_from_kernels():
    """How many gradients' sums of squares the clip's norm took from the weight-gradient kernels so far
    (sonic_kernels.GradSquares), or None where the step reads every gradient."""
    sk = moe.sonic_kernels
    return None if sk is None or sk.GRAD_SQUARES is None else sk.GRAD_SQUARES.taken


def mark():
    """A point in the device's stream (on the CPU, where an op returns when done, the host's clock) that times
    back-to-back steps with no sync between them. Taken after the burn-in, not after a sync: after one the GPU
    waits for the host to enqueue the next step's kernels, which made the first timed step 5-7% slower than
    the next on an H100 (eager, docs/LOG.md) and is a wait that steps run back to back do not have."""
    if device_type != 'cuda':
        return time.perf_counter()
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def seconds(a, b):
    """Seconds between two marks (on the GPU, once b has been reached: after a sync)."""
    return a.elapsed_time(b) / 1e3 if device_type == 'cuda' else b - a


def train_backend(name, route):
    """Burn-in then timed optimizer steps of a fresh GPT (same seed for every backend)."""
    raw, step = make_train_step(name, route, compile)
    sync = torch.cuda.synchronize if device_type == 'cuda' else (lambda: None)
    if device_type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for _ in range(burnin):
        loss = step()
    # each timed step between marks at the steps' boundaries: the intervals sum to the window, so the mean is
    # the throughput, and their spread says whether a run that reads off another's varies within itself
    marks = [mark()]
    layers, loads = raw.moe_layers(), []
    for _ in range(steps):
        loss = step()
        marks.append(mark())
        if layers:  # the step's expert loads beside its time (the routing moves as the weights train): no sync
            loads.append(torch.stack([m.tokens_per_expert for m in layers]))
    sync()
    step_list = [seconds(a, b) for a, b in zip(marks, marks[1:])]
    step_s = sum(step_list) / len(step_list)
    row = dict(backend=name, routing=route, step_ms=step_s * 1e3, loss=loss.item(),
               step_ms_median=statistics.median(step_list) * 1e3, step_ms_min=min(step_list) * 1e3,
               step_ms_max=max(step_list) * 1e3, step_ms_each=[round(t * 1e3, 3) for t in step_list],
               tokens_per_s=batch_size * block_size * gradient_accumulation_steps / step_s,
               mfu=raw.estimate_mfu(batch_size * gradient_accumulation_steps, step_s),
               params=raw.get_num_params(), active_params=raw.get_num_active_params(),
               peak_mib=torch.cuda.max_memory_allocated() / 2**20 if device_type == 'cuda' else None,
               norm_from_kernels=norm_from_kernels(),
               # each timed step's busiest expert over the mean, in the MoE layer where that is largest
               load_max_over_mean_each=[round((l.amax(1) / l.float().mean(1)).max().item(), 4) for l in loads] or None)
    del loss
    # activation memory of one MoE layer: forward on a (batch*block, n_embd) input, output kept
    row['moe_layer_mib_fwd'] = None
    if device_type == 'cuda' and layers:
        xin = torch.randn(batch_size * block_size, n_embd, device=device, requires_grad=True)
        free_memory()
        base = torch.cuda.memory_allocated()
        with (torch.autocast(device_type, dtype=dt) if dt != torch.float32 else nullcontext()):
            out = layers[0](xin)
        torch.cuda.synchronize()
        row['moe_layer_mib_fwd'] = (torch.cuda.memory_allocated() - base) / 2**20
        del out, xin
        layers[0].aux_loss = None
    return row


# profile mode: the parts of a training step, in the order they run. A kernel (on the CPU: an op's
# self time) belongs to the part of the innermost marked CPU range that launched it
STEP_PARTS = {
    'data': "get_batch: random tokens or a train.bin slice, copied to the device",
    'embeddings and head': "token and position embeddings, lm_head, and the glue in GPT.forward",
    'attention': "CausalSelfAttention: qkv and output projections, scaled_dot_product_attention",
    'moe router': "what MoE.forward runs outside routing and experts: the router (on sonic, its fused GEMMs and kernels, top-K included), the balancing loss, the counts",
    'moe routing': "top-K and gates on the reference path (route_topk), token rounding, "
                   "and on sonic the routing metadata (the pairs' counting sort by expert, the tile map)",
    'moe experts': "the expert backend (on sonic its GEMMs and the gather-sum), and shared experts, if any",
    'dense mlp': "the dense SwiGLU MLPs of the first n_dense_layers layers",
    'norms and residuals': "the LayerNorms and the residual adds of each block",
    'loss': "cross-entropy over the vocabulary",
    'optimizer': "the gradients' norm for clipping (grad_clip), AdamW's step and zero_grad",
    'communication': "collectives (NCCL, gloo); none in one process",
    'other': "what no part claims: gradient accumulation into .grad, autograd's own ops; compiled, the fused "
             "kernels whose names show no part (casts, adds, activations)",
    'idle': "the device waits: step time minus the time any kernel runs (on the CPU: minus any op)",
}
RANGE = 'bench:'  # prefix of the record_function ranges that mark the parts
BACKWARD = 'autograd::engine::evaluate_function: '  # how the profiler names a backward node's run
COMM = ('nccl', 'c10d::', 'gloo', 'record_param_comms', 'all_reduce', 'allreduce', 'all_to_all', 'all_gather',
        'reduce_scatter')
# A compiled step has no ranges: torch.compile drops record_function, and the hooks would change its graphs.
# Its parts come from the ops that launch the kernels instead: sonic's custom ops by name, attention's by
# name, a GEMM by a weight's shape among its operands (WEIGHT_PARTS), and the compiler's own fused kernels
# (launched from COMPILED_GRAPH) by the ops their names list (FUSED_PARTS). Fusion blurs the edges: a fused
# kernel that adds a residual and normalises counts as norms and residuals
SONIC_OPS = {'sonic::router_fwd': 'moe router', 'sonic::router_bwd': 'moe router', 'sonic::moe_fwd': 'moe experts',
             'sonic::moe_bwd': 'moe experts', 'sonic::round_pairs': 'moe routing',
             'sonic::round_pairs_bwd': 'moe routing', 'sonic::adamw_': 'optimizer'}
GEMMS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm', 'aten::_grouped_mm')
COMPILED_GRAPH = '## Call CompiledFxGraph'   # the range inductor's wrapper puts around a compiled graph's run
FUSED_PARTS = (('nll_loss', 'loss'), ('log_softmax', 'loss'), ('layer_norm', 'norms and residuals'),
               ('embedding', 'embeddings and head'))
WEIGHT_PARTS = {}   # a weight's sorted last two sides -> its part (profile_backend fills it with weight_parts)


def module_parts(model):
    """The part of each module of the GPT whose forward is one part's (an inner module's part wins)."""
    parts = {model: 'embeddings and head', model.lm_head: 'embeddings and head'}
    t = model.transformer
    for m in (t.wte, t.wpe, t.drop):
        parts[m] = 'embeddings and head'
    parts[t.ln_f] = 'norms and residuals'
    for block in t.h:
        parts.update({block: 'norms and residuals', block.ln_1: 'norms and residuals',
                      block.ln_2: 'norms and residuals', block.attn: 'attention'})
        if isinstance(block.mlp, moe.MoE):
            parts[block.mlp] = 'moe router'
            if block.mlp.shared is not None:
                parts[block.mlp.shared] = 'moe experts'
        else:
            parts[block.mlp] = 'dense mlp'
    return parts


def weight_parts(model):
    """WEIGHT_PARTS for a compiled step's GEMMs: each weight's sorted last two sides -> the part of the
    module that holds it (its nearest in module_parts; an MoE's expert weights: 'moe experts'). A shape
    that two parts hold names neither."""
    parts, found = module_parts(model), collections.defaultdict(set)
    def walk(mod, part):
        part = parts.get(mod, part)
        for w in mod.parameters(recurse=False):
            if w.dim() >= 2:
                found[tuple(sorted(w.shape[-2:]))].add('moe experts' if isinstance(mod, moe.MoE) and w.dim() == 3 else part)
        for child in mod.children():
            walk(child, part)
    walk(model, 'other')
    return {k: ps.pop() for k, ps in found.items() if len(ps) == 1}


@contextmanager
def part_ranges(model):
    """Marks the parts of a training step for the profiler from bench.py alone: a record_function range
    around each module's forward (forward pre- and post-hooks), and around the expert backends and the
    routing functions that MoE.forward looks up at call time (wrapped here, restored on exit)."""
    parts = module_parts(model)
    handles = []
    for m, part in parts.items():
        stack = []  # the open range of this module's forward
        def pre(module, args, part=part, stack=stack):
            stack.append(record_function(RANGE + part))
            stack[-1].__enter__()
        def post(module, args, out, stack=stack):
            stack.pop().__exit__(None, None, None)
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]

    def wrap(fn, part):
        def marked(*args, **kwargs):
            with record_function(RANGE + part):
                return fn(*args, **kwargs)
        return marked
    sk = moe.sonic_kernels
    saved = (dict(moe.EXPERT_BACKENDS), moe.route_topk, moe.round_tokens, sk and sk.routing_metadata,
             sk and sk.round_pairs)
    moe.EXPERT_BACKENDS.update({k: wrap(f, 'moe experts') for k, f in saved[0].items()})
    moe.route_topk, moe.round_tokens = wrap(saved[1], 'moe routing'), wrap(saved[2], 'moe routing')
    if sk:  # sonic's expert op builds its routing metadata inside: the innermost range takes its kernels
        sk.routing_metadata, sk.round_pairs = wrap(saved[3], 'moe routing'), wrap(saved[4], 'moe routing')
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        moe.EXPERT_BACKENDS.update(saved[0])
        moe.route_topk, moe.round_tokens = saved[1], saved[2]
        if sk:
            sk.routing_metadata, sk.round_pairs = saved[3], saved[4]


def named_part(name):
    """The part an op's own name gives, in any step: the optimizer's (Optimizer.step#AdamW.step,
    Optimizer.zero_grad#AdamW.zero_grad), the loss, communication; else None."""
    if name.startswith('Optimizer.'):
        return 'optimizer'
    if name == 'aten::cross_entropy_loss':
        return 'loss'
    if any(c in name.lower() for c in COMM):
        return 'communication'
    return None


def range_part(e):
    """The part of a CPU op from its innermost marked ancestor (itself included); for an op that
    runs in backward, the backward node's event, whose part is that of the forward op with its
    sequence number."""
    while e is not None:
        name = e.name
        if name.startswith(RANGE):
            return name[len(RANGE):]
        if part := named_part(name):
            return part
        if name.startswith(BACKWARD):
            return e
        e = e.cpu_parent
    return 'other'


def op_part(e):
    """The part of a CPU op of a compiled step, from the op and its ancestors: make_train_step's ranges
    (around the compiled model, not in it), sonic's ops, attention, a GEMM with a model weight's shape
    among its operands or its output, the optimizer, the loss and communication as range_part finds
    them; COMPILED_GRAPH for the compiler's kernels (fused_part names their part); else 'other'."""
    while e is not None:
        name = e.name
        if name.startswith(RANGE):   # make_train_step's own ranges, outside the compiled graphs: data, optimizer
            return name[len(RANGE):]
        part = SONIC_OPS.get(name) or ('attention' if 'scaled_dot_product' in name else None)
        if part is None and name in GEMMS:
            shapes = [s for s in e.input_shapes if len(s) >= 2]
            if len(shapes) >= 2:
                shapes.append(shapes[0][:-2] + [shapes[0][-2], shapes[1][-1]])   # the product's
            part = next((WEIGHT_PARTS[k] for k in (tuple(sorted(s[-2:])) for s in shapes) if k in WEIGHT_PARTS), None)
        if part is None and name.startswith(COMPILED_GRAPH):
            part = COMPILED_GRAPH
        part = part or named_part(name)
        if part is not None:
            return part
        e = e.cpu_parent
    return 'other'


def fused_part(kernel_name):
    """The part of a kernel the compiled graph itself launched, by the ops its name lists (inductor
    names a fused kernel after them: triton_per_fused_add_native_layer_norm_...)."""
    return next((p for key, p in FUSED_PARTS if key in kernel_name), 'other')


def union_us(intervals):
    """Total length of the union of (start, end) intervals."""
    total, end = 0.0, -math.inf
    for s, t in sorted(intervals):
        if t > end:
            total += t - max(s, end)
            end = t
    return total


PROFILE_TOP = 3  # kernels listed a part, the largest first


def split_step(events, wall_us, compiled=False):
    """Microseconds of each part over the profiled steps, from the profiler's events and the steps'
    wall time. CUDA: each kernel's time goes to the part of the CPU op that launched it (kernel_parts);
    on the CPU each op's self time (its time minus its children's) goes to its part, so nothing counts
    twice. 'idle' is the wall time minus the time any kernel (on the CPU: any op) runs. Also returns, on
    CUDA, the time communication kernels run while no other kernel does, and each part's kernels by
    name with their time, largest first (both None on the CPU)."""
    cuda = device_type == 'cuda'
    cpu = sorted((e for e in events if e.device_type == DeviceType.CPU and not e.is_async),
                 key=lambda e: e.time_range.start)
    found = [op_part(e) if compiled else range_part(e) for e in cpu]
    # a forward op records the sequence number of the autograd node it makes; its backward node has it too.
    # An op that makes no node records the next one, so the last op with a number (the maker) wins
    seq_part = {e.sequence_nr: p for e, p in zip(cpu, found) if isinstance(p, str) and e.sequence_nr >= 0}
    us = dict.fromkeys(STEP_PARTS, 0.0)
    claimed = collections.defaultdict(list)   # (kernel name, duration): the parts of the ops that launched one
    for e, p in zip(cpu, found):
        p = p if isinstance(p, str) else seq_part.get(p.sequence_nr, 'other')
        if cuda:
            for k in e.kernels:
                claimed[(k.name, k.duration)].append(fused_part(k.name) if p == COMPILED_GRAPH else p)
        else:   # a compiled graph's own time on the CPU is its C++ kernels': they name no part
            us['other' if p == COMPILED_GRAPH else p] += e.self_cpu_time_total
    if not cuda:
        us['idle'] = max(0.0, wall_us - union_us((e.time_range.start, e.time_range.end) for e in cpu if e.cpu_parent is None))
        return us, None, None
    kernels = gpu_kernels(events)
    by_name = collections.defaultdict(collections.Counter)   # part: kernel name -> us
    for k, p in zip(kernels, kernel_parts(kernels, claimed)):
        us[p] += k.time_range.elapsed_us()
        by_name[p][k.name] += k.time_range.elapsed_us()
    comm, other = kernel_spans(kernels)
    us['idle'] = max(0.0, wall_us - union_us(comm + other))
    return us, exposed_us(comm, other), {p: c.most_common() for p, c in by_name.items()}


def gpu_kernels(events):
    """The GPU's own events (kernels, copies, memsets) in start order, without the GPU-side copies of
    the marked ranges."""
    return sorted((e for e in events if e.device_type == DeviceType.CUDA and not getattr(e, 'is_user_annotation', False)
                   and not e.name.startswith(RANGE)), key=lambda e: e.time_range.start)


# sonic's routing kernels: the metadata's, which run inside its expert op, and token rounding's. The
# profiler links a kernel to the innermost op around its launch, not to a record_function range inside that op
# (seen on the H200), so part_ranges' range around sonic_kernels.routing_metadata claims only its torch op (the
# cumsum): these go to 'moe routing' by name, as nothing else launches them
ROUTING_KERNELS = ('_route_count_kernel', '_route_place_kernel', '_round_select_kernel', '_round_pairs_kernel',
                   '_round_pairs_bwd_kernel')


def kernel_parts(kernels, claimed):
    """The part of each GPU kernel (in start order). A CPU op lists the kernels it launched by name and
    duration only (torch's profiler Kernel), so a kernel takes the part of an op that claims its name
    and duration (claimed: (name, duration) -> parts; two such kernels last the same, so which op gets
    which does not change any part's time). A kernel that no op claims (the Gluon kernels' launches on
    the H200 were once linked to no op) takes the part of the next claimed kernel on its stream: an op's
    kernels run in a row on its stream, and each sonic op ends with a claimed Triton kernel (the
    gather-sum). ROUTING_KERNELS go to 'moe routing' whoever claims them."""
    claimed = {key: list(ps) for key, ps in claimed.items()}
    parts = []
    for k in kernels:
        ps = claimed.get((k.name, k.time_range.end - k.time_range.start))
        parts.append('moe routing' if k.name in ROUTING_KERNELS else ps.pop() if ps else None)
    nxt = {}   # stream: the part of the next claimed kernel on it, walking backwards
    for i in range(len(kernels) - 1, -1, -1):
        stream = getattr(kernels[i], 'device_resource_id', 0)
        if parts[i] is None:
            parts[i] = nxt.get(stream, 'other')
        else:
            nxt[stream] = parts[i]
    return parts


def kernel_spans(kernels):
    """The (start, end) intervals of the GPU's kernels (gpu_kernels): NCCL's (communication), and the
    rest."""
    spans = {True: [], False: []}
    for k in kernels:
        spans['nccl' in k.name.lower()].append((k.time_range.start, k.time_range.end))
    return spans[True], spans[False]


def exposed_us(comm, other):
    """Length of the time in the intervals comm that no interval of other covers: the communication
    that nothing hides, |comm| - |comm and other| = |comm or other| - |other|."""
    return union_us(comm + other) - union_us(other)


def profile_backend(name, route):
    """burnin steps, then profile_steps steps under torch.profiler: eager with the parts marked by ranges,
    compiled (compile=True, as train.py compiles it, but not as CUDA graphs) with none, the parts found from
    the ops (op_part)."""
    raw, step = make_train_step(name, route, use_compile=compile)
    cuda = device_type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    WEIGHT_PARTS.clear()
    WEIGHT_PARTS.update(weight_parts(raw))
    with nullcontext() if compile else part_ranges(raw):
        for _ in range(burnin):
            step()
        # the same number of steps unprofiled first: the profiler's host cost leaves the device waiting
        # (3.8-26 ms a step on h200_moe, by the host), so a step's own wait is its unprofiled time less the kernels'
        t0 = mark()
        for _ in range(profile_steps):
            step()
        t1 = mark()
        sync()
        unprofiled_us = seconds(t0, t1) * 1e6
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []),
                     record_shapes=compile) as prof:
            t0 = time.perf_counter()
            for _ in range(profile_steps):
                loss = step()
            sync()
            wall_us = (time.perf_counter() - t0) * 1e6
        loss = loss.item()
    us, exposed, by_name = split_step(prof.events(), wall_us, compiled=compile)
    step_ms = wall_us / profile_steps / 1e3
    unprofiled_ms = unprofiled_us / profile_steps / 1e3
    busy_ms = step_ms - us['idle'] / profile_steps / 1e3   # the time some kernel (on the CPU: some op) runs
    parts = {p: dict(ms=v / profile_steps / 1e3, share=v / wall_us) for p, v in us.items()}
    top = None if by_name is None else {p: [[n, t / profile_steps / 1e3] for n, t in ks[:PROFILE_TOP]]
                                        for p, ks in by_name.items()}
    return dict(backend=name, routing=route, compiled=compile, step_ms=step_ms, loss=loss, parts=parts, top_kernels=top,
                parts_sum_ms=sum(p['ms'] for p in parts.values()), world_size=world_size,
                micro_steps=gradient_accumulation_steps, norm_from_kernels=norm_from_kernels(),  # a rank's, under torchrun
                comm_exposed_ms=None if exposed is None else exposed / profile_steps / 1e3,
                unprofiled_step_ms=unprofiled_ms, unprofiled_idle_ms=max(0.0, unprofiled_ms - busy_ms))


def print_profile(r):
    print(f"\n{r['backend']} [{r['routing']}]: {r['step_ms']:.2f} ms per step, {profile_steps} profiled "
          f"{'compiled' if r['compiled'] else 'eager'} steps, loss {r['loss']:.3f}")
    print(f"{'part':<22}{'ms/step':>10}{'% step':>8}  what")
    for p, v in r['parts'].items():
        print(f"{p:<22}{v['ms']:10.3f}{100 * v['share']:7.1f}%  {STEP_PARTS[p]}")
    print(f"{'sum':<22}{r['parts_sum_ms']:10.3f}{100 * r['parts_sum_ms'] / r['step_ms']:7.1f}%")
    if r['top_kernels']:
        print(f"each part's largest kernels, ms/step:")
        for p in r['parts']:
            if r['top_kernels'].get(p):
                print(f"  {p:<20}" + "; ".join(f"{n[:60]} {t:.3f}" for n, t in r['top_kernels'][p]))
    print(f"unprofiled, the same steps took {r['unprofiled_step_ms']:.2f} ms each; less the "
          f"{r['step_ms'] - r['parts']['idle']['ms']:.2f} ms that kernels (on the CPU: ops) ran of a profiled one, the "
          f"device waited ~{r['unprofiled_idle_ms']:.2f} ms of an unprofiled step")
    if r['world_size'] > 1:
        exposed = 'not measured on the CPU' if r['comm_exposed_ms'] is None else f"{r['comm_exposed_ms']:.3f} ms/step"
        print(f"rank 0 of {r['world_size']} (DDP); communication no other kernel overlaps: {exposed}")


def plot_profile(rows, png):
    """One stacked horizontal bar per backend: the step split into its parts, in ms."""
    ok = [r for r in rows if 'error' not in r]
    fig, ax = plt.subplots(figsize=(11, max(3.5, 1.5 + 0.6 * len(ok))))
    colors = plt.get_cmap('tab20').colors
    for j, r in enumerate(ok):
        left = 0.0
        for i, (p, v) in enumerate(r['parts'].items()):
            ax.barh(j, v['ms'], left=left, color='lightgray' if p == 'idle' else colors[i % len(colors)],
                    label=p if j == 0 else None)
            left += v['ms']
    ax.set_yticks(range(len(ok)), [f"{r['backend']} [{r['routing']}]" for r in ok])
    ax.set_xlabel('ms per training step')
    ax.set_title(f'Where a training step goes ({dtype}, {run_info()["device"]})')
    if ok:
        ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
    save(fig, png)


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
    MODES = ('layer', 'sweep', 'kernels', 'train', 'profile', 'load', 'curves')
    for ok, msg in [(mode in MODES, f"mode={mode!r}: choose {', '.join(MODES[:-1])} or {MODES[-1]}"),
                    (not cuda_graphs or mode in ('layer', 'sweep'),
                     f"--cuda_graphs=True times the layer in modes layer and sweep only; drop it for mode={mode!r}"),
                    (not cuda_graphs or device_type == 'cuda',
                     "--cuda_graphs=True needs a CUDA GPU (it captures CUDA graphs); drop it on the CPU"),
                    (grad_clip >= 0, f"grad_clip={grad_clip}: use a norm above 0, or 0 for no clipping"),
                    (device_type == 'cuda' or tiny or mode in ('load', 'curves'),
                     f"{'no CUDA GPU here' if not torch.cuda.is_available() else 'device=' + repr(device)}, and "
                     f"the default sizes would run for hours on the CPU: add --tiny for CPU-sized ones"),
                    (mode != 'curves' or curve_files, "mode=curves needs --log_files=a/log.jsonl,b/log.jsonl"),
                    (not curve_names or len(curve_names) == len(curve_files),
                     f"--labels gives {len(curve_names)} names for {len(curve_files)} --log_files: give one per file, or none"),
                    (routing in ('topk', 'rounding', 'both'), f"routing={routing!r}: choose topk, rounding or both"),
                    (dtype_asked in DTYPES, f"dtype={dtype_asked!r}: choose bfloat16, float16 or float32"),
                    (mode != 'sweep' or (sweep_n_min >= 1 and sweep_E0 >= 2 and min(sweep_T, sweep_d, sweep_nK) >= 1),
                     "sweep needs sweep_n_min >= 1, sweep_E0 >= 2 (K starts at 2) and positive sweep_T, sweep_d, sweep_nK"),
                    (backend_names and not bad, f"backends={backends!r}: choose from {list(EXPERT_BACKENDS)}"),
                    (min(steps, profile_steps, kernel_iters) >= 1, "steps, profile_steps and kernel_iters must be at least 1"),
                    (not dataset or os.path.exists(data_path),
                     f"data/{dataset}/train.bin not found; run data/{dataset}/prepare.py, or --dataset='' for random tokens")]:
        if not ok:
            raise SystemExit(f"bench: {msg}")
    os.makedirs(out_dir, exist_ok=True)
    # TF32 for fp32 matmuls, as train.py sets it (the module docstring says which; tf32_off keeps it from the checks)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    routes = ['topk', 'rounding'] if routing == 'both' else [routing]
    print(f"device {device} ({run_info()['device']}), dtype {dtype}, backends {backend_names}")
    if mode in ('layer', 'sweep'):
        todo = [s for s in parse_shapes(shapes) if only in s[0]] if mode == 'layer' else sweep_shapes()
        if not todo:
            raise SystemExit(f"bench: no shape left (shapes={shapes!r}, only={only!r}, sweep_nK={sweep_nK})")
        # SonicMoE's benchmark times its whole softmax-top-K layer, router included: compare with 'layer'
        ref = {REF_NAME: {k: dict(fwd_tflops=f, bwd_tflops=b) for k, (f, b) in SONIC_H100.items()}}
        rows = []
        for s in todo:
            for route in (routes if mode == 'layer' else ['topk']):
                rows += bench_shape(*s, route)
                path = write_json(f'{mode}.json', dict(parts=PARTS, results=rows,
                                                       **(dict(reference=ref) if mode == 'layer' else {})))
        print_table(rows)
        print(f"wrote {path}")
        if mode == 'layer':
            plot_layer(rows, os.path.join(out_dir, 'layer_tflops.png'), os.path.join(out_dir, 'layer_memory.png'))
        else:
            plot_sweep(rows, os.path.join(out_dir, 'sweep.png'))
    elif mode == 'kernels':
        todo = [s for s in parse_shapes(shapes) if only in s[0]]
        if not todo:
            raise SystemExit(f"bench: no shape left (shapes={shapes!r}, only={only!r})")
        rows = []
        for label, *shape in todo:
            for route in routes:
                for name in backend_names:
                    row = dict(label=label, routing=route, backend=name)
                    try:
                        row.update(kernel_profile(name, *shape, route))
                        print_kernels(label, route, name, row)
                    except Exception as e:  # as in bench_shape: one failed backend must not lose the others
                        row['error'] = short(e)
                        print(f"\n{label} [{route}] {name}: {row['error']}")
                    free_memory()
                    rows.append(row)
                    path = write_json('kernels.json', dict(results=rows))
        print(f"wrote {path}")
    elif mode in ('train', 'profile'):
        rows = []
        for route in routes:
            for name in backend_names:
                try:
                    rows.append((train_backend if mode == 'train' else profile_backend)(name, route))
                except Exception as e:  # as in bench_shape: one failed backend must not lose the others
                    rows.append(dict(backend=name, routing=route, error=short(e)))
                if compile:
                    torch._dynamo.reset()
                free_memory()
                r = rows[-1]
                if 'error' in r:
                    print(f"{name:<11}{route:<9}{r['error']}")
                elif mode == 'profile':
                    print_profile(r)
                else:
                    print(f"{name:<11}{route:<9}{r['step_ms']:9.1f} ms/step (steps {r['step_ms_min']:.1f}-"
                          f"{r['step_ms_max']:.1f}) {r['tokens_per_s']:10.0f} tok/s  "
                          f"MFU {100 * r['mfu']:5.1f}%  peak {fmt(r['peak_mib'], '.0f')} MiB  one MoE layer fwd "
                          f"{fmt(r['moe_layer_mib_fwd'], '.0f')} MiB  loss {r['loss']:.3f}"
                          + (f"  load max/mean {min(ld):.2f}-{max(ld):.2f}" if (ld := r.get('load_max_over_mean_each')) else ''))
                path = write_json(f'{mode}.json', dict(results=rows, **(dict(parts=STEP_PARTS) if mode == 'profile' else {})))
        print(f"wrote {path}")
        if mode == 'profile':
            plot_profile(rows, os.path.join(out_dir, 'profile.png'))
    elif mode == 'curves':
        names = curve_names or [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in curve_files]
        vals = plot_curves(curve_files, names, os.path.join(out_dir, 'curves.png'))
        for name, v in vals.items():
            print(f"{name:<24} val loss " + ', '.join(f"{it}: {x:.4f}" for it, x in v.items()))
        print(f"wrote {write_json('curves.json', dict(log_files=curve_files, val_loss=vals))}")
    else:
        summary = plot_expert_load(load_file, os.path.join(out_dir, 'expert_load.png'))
        print(f"wrote {write_json('load.json', dict(load_file=load_file, last_interval=summary))}")
    if ddp:
        # as train.py leaves under torchrun: meet, take the group down, then os._exit, which skips the
        # C++ static destructors in which gloo now and then aborts a finished rank
        dist.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
