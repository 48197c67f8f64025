"""
Trains a fine-grained Mixture-of-Experts GPT, on a CPU, one GPU, or several GPUs with DDP.

One process (a CPU or one GPU):
$ python train.py configs/default.py --batch_size=32

DDP on 8 GPUs of one node:
$ torchrun --standalone --nproc_per_node=8 train.py configs/owt_moe_gpt2s.py

DDP on 2 nodes of 8 GPUs each; run this on each node, with --node_rank=1 on the second:
$ torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --master_addr=10.0.0.1 --master_port=29500 \
    train.py configs/owt_moe_gpt2s.py
(if the nodes have no Infiniband, prepend NCCL_IB_DISABLE=1)

Writes to out_dir: ckpt.pt, log.jsonl (one line per log interval and per eval) and
expert_load.jsonl (tokens routed to each expert of each MoE layer, summed over each log interval).
With always_save_checkpoint=False, ckpt.pt keeps the best evaluated model, and ckpt_last.pt the
later state where a stop or the end saves one that is not the best.

Ctrl-C (SIGINT) or SIGTERM finishes the current iteration, writes a checkpoint and prints the command
that resumes (the same one with --init_from=resume); in one process a second Ctrl-C quits at once, without saving.
A resume takes the training settings from the checkpoint, except those given on its own command line;
the launch's own (out_dir, compile_mode, expert_copies, fsdp, ep_size, ...: launch_keys below) come from this launch.
"""

import os
import sys
import atexit
import json
import math
import time
import errno
import shlex
import pickle
import random
import signal
import tempfile
from contextlib import nullcontext
from dataclasses import fields

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from model import GPTConfig, GPT, load_checkpoint, clipped_fused_step, folds_clip
from moe import EP_EXCHANGES, require_cuda, require_device, sonic_kernels

# -----------------------------------------------------------------------------
# default config values: a small MoE on the stdlib corpus; configs/*.py and --key=value override
# I/O
out_dir = 'out'
eval_interval = 250 # evaluate (and maybe checkpoint) every this many iterations
log_interval = 10 # print, and check the loss is finite, every this many iterations
eval_iters = 50 # batches per split in each evaluation
eval_only = False # if True, evaluate once and exit
always_save_checkpoint = True # if False, ckpt.pt is saved only when val loss improves (a stop, or the end, saves
                              # a state that is not the best to ckpt_last.pt, from which a resume continues)
save_checkpoints = True # False: write no checkpoint at all (throughput runs of big models)
init_from = 'scratch' # 'scratch' or 'resume' (from out_dir/ckpt.pt, or the later ckpt_last.pt, with its settings)
overwrite = False # True lets a run from scratch replace the run (ckpt.pt and logs) already in out_dir
# wandb logging
wandb_log = False # needs `pip install wandb`; WANDB_MODE=offline works without an account
wandb_project = 'sonicmoe'
wandb_run_name = 'run'
# data
dataset = 'stdlib' # data/<dataset>/ holds train.bin, val.bin and meta.pkl, see data/*/prepare.py
data_dir = '' # '' means data/<dataset>; set it to train on data prepared elsewhere
gradient_accumulation_steps = 1 # global: divided among the DDP ranks
batch_size = 16 # micro-batch size of one rank
block_size = 256 # context length
# model: see GPTConfig in model.py for what each field means
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.0
bias = False
n_expert = 64
top_k = 8
expert_size = 128
n_shared_experts = 0
n_dense_layers = 0
dense_size = 0
moe_backend = 'torch' # 'torch' | 'sonic' (Triton kernels, GPU) | 'grouped_mm' (Hopper)
router_type = 'softmax_topk' # 'softmax_topk' | 'topk_softmax' | 'sigmoid'
router_dtype = 'bf16x2' # sonic's router GEMM under bf16: 'bf16x2' (the fp32 weight as hi+lo bf16) | 'bf16' | 'fp32'
norm_topk_prob = True
aux_loss_coef = 0.01
z_loss_coef = 0.0
bias_update_rate = 1e-3
token_rounding = False
rounding_tile = 128
rounding_mode = 'nearest'
# adamw optimizer
learning_rate = 6e-4 # max learning rate
max_iters = 5000 # total number of optimizer steps
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0 # clip gradients at this norm, or disable if == 0.0
adamw_states = 'float32' # AdamW's two moments: 'float32', or 'bfloat16' (TritonAdamW, CUDA: 8 bytes a parameter less)
expert_copies = True # sonic under bf16/fp16 autocast with TritonAdamW, one process or DDP: AdamW also writes 16-bit
                     # copies of the expert weights, which forward reads instead of casting the fp32 weights
kernel_grad_norm = True # sonic, one process, the clip inside AdamW: the norm takes the expert weight gradients' sums
                        # of squares from the kernels that write them (sonic_kernels.GradSquares), not by reading them
# learning rate decay settings
decay_lr = True # whether to decay the learning rate
warmup_iters = 100 # how many steps to warm up for
lr_decay_iters = 5000 # should be ~= max_iters per Chinchilla
min_lr = 6e-5 # minimum learning rate, should be ~= learning_rate/10 per Chinchilla
# system
device = 'auto' # 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ...
dtype = 'auto' # 'auto' (bfloat16 on cuda, float32 elsewhere), 'float32', 'bfloat16' or 'float16'
compile = False # use PyTorch 2.0 to compile the model to be faster
compile_mode = 'default' # torch.compile's mode; 'reduce-overhead' also replays the compiled forward and backward
                         # as CUDA graphs (static shapes), so the host's kernel launches leave the step
seed = 1337
deterministic = False # True: a GPU step repeats bit for bit from the seed (torch's deterministic algorithms), at a cost
# parallelism (torchrun)
ddp_bucket_mb = 25.0 # DDP's gradient buckets (MiB): a bucket's all-reduce starts once its gradients are all in;
                     # under compile the graph splits at the buckets. Fewer, larger ones: fewer launches, less overlap
fsdp = False # shard parameters, gradients and optimizer state with FSDP2 (torchrun)
fsdp_reshard = True # FSDP2: free a block's gathered weights after its forward and gather them again for its
                    # backward (ZeRO-3); False keeps them to the backward: one all-gather less a step, more memory
ep_size = 0 # expert parallelism (torchrun): 0 off; k splits each layer's experts over groups of k ranks
ep_exchange = 'a2a' # EP's tokens: 'a2a' each to the ranks it chose; 'gather' to all, no host sync (top-K only)
ep_chunks = 1 # 'gather' only: cut each layer's tokens into this many pieces, one's exchanges overlapping another's experts
# testing
debug_nan_iter = -1 # tests only: make the loss NaN at this iteration to exercise the NaN stop
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configurator.py')).read()) # overrides from the command line or a config file
config = {k: globals()[k] for k in config_keys} # will be useful for logging
# -----------------------------------------------------------------------------

# Ctrl-C and SIGTERM (a scheduler's, or torchrun passing on a Ctrl-C) ask the run to stop: the training
# loop finishes its iteration, saves and exits with the command that resumes. Only a flag is set here:
# the handler runs between two bytecodes of the main thread, wherever that is
stop_signal = 0
def request_stop(signum, frame):
    global stop_signal
    first = not stop_signal
    stop_signal = stop_signal or signum
    # a second Ctrl-C kills the process at once, even inside a long C call. A repeated SIGTERM does
    # not: a scheduler may send it to every process while torchrun also passes its own on. Set
    # before the message below, which a signal may interrupt, so a Ctrl-C after it always quits
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if first and int(os.environ.get('RANK', 0)) == 0:
        # os.write, not print: a print interrupted by this handler would fail as a reentrant call
        # under torchrun a second Ctrl-C goes to torchrun, which passes on a SIGTERM (not a quick exit: see above)
        again = ("torchrun ends the ranks if that outlasts its shutdown timeout" if 'RANK' in os.environ else
                 "press Ctrl-C again to quit at once without saving")
        os.write(2, f"\n{signal.Signals(signum).name}: stopping after this iteration to save a checkpoint; "
                    f"{again}\n".encode())
if eval_only:
    signal.signal(signal.SIGINT, signal.SIG_DFL) # an evaluation has nothing to save: Ctrl-C ends it quietly
else:
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

# a resumed run is the run its checkpoint saved: every setting comes from the checkpoint's config,
# except the keys of this launch and those this command line sets (configurator.py's explicit_keys),
# and the model's shape always comes from the checkpoint (only the expert backend and dropout may
# change, and a shorter block_size only shortens the batches). Read it first, so that everything
# below (the checks, the batch shape, the data check, the expert counters) uses the run's values
launch_keys = {'init_from', 'out_dir', 'eval_only', 'overwrite', 'ddp_bucket_mb', 'fsdp', 'fsdp_reshard', 'ep_size',
               'ep_exchange', 'ep_chunks', 'debug_nan_iter', 'compile_mode', 'expert_copies'}
ckpt_path = os.path.join(out_dir, 'ckpt.pt')
# always_save_checkpoint=False: ckpt.pt holds the best model, and a later state that is not the best goes
# here. It exists only while it is newer than ckpt.pt (writing ckpt.pt removes it), so a resume takes it
last_path = os.path.join(out_dir, 'ckpt_last.pt')
checkpoint = None
if init_from == 'resume':
    resume_path = last_path if os.path.exists(last_path) else ckpt_path
    if not os.path.exists(resume_path):
        raise SystemExit(f"init_from='resume' but there is no checkpoint at {ckpt_path}; "
                         f"check out_dir, or start over with --init_from=scratch")
    # map to cpu: the RNG states must stay on the cpu; load_state_dict moves the rest to the device
    checkpoint = load_checkpoint(resume_path, map_location='cpu')
    say = print if int(os.environ.get('RANK', 0)) == 0 else lambda *a: None # notes now, before any check
    shape = {k: v for k, v in checkpoint['model_args'].items() if k not in ('moe_backend', 'dropout')}
    for k, v in {**checkpoint['config'], **shape}.items():
        if k not in config or k in launch_keys or config[k] == v:
            continue
        if k in shape and k in explicit_keys:
            if k == 'block_size' and config[k] < v: # a shorter context fits the model: the batches use it
                say(f"note: the model's block_size is {v} (the checkpoint's); batches use {config[k]}")
                continue
            say(f"note: {k}={v!r} from the checkpoint, not {config[k]!r}")
        elif k in explicit_keys:
            say(f"note: {k}={config[k]!r} from this launch's arguments (the checkpoint had {v!r})")
            continue
        globals()[k] = config[k] = v
elif init_from != 'scratch':
    raise SystemExit(f"init_from={init_from!r}; use 'scratch' or 'resume'")

# settings that must be positive; 0 or less would fail later with an obscure error
for k in ('batch_size', 'block_size', 'gradient_accumulation_steps', 'eval_interval', 'eval_iters', 'log_interval'):
    if globals()[k] < 1:
        raise SystemExit(f"{k}={globals()[k]}; it must be at least 1")
if max_iters < 0:
    raise SystemExit(f"max_iters={max_iters}; it must be 0 or more")
for k in ('learning_rate', 'min_lr', 'weight_decay', 'grad_clip', 'warmup_iters', 'lr_decay_iters'):
    if globals()[k] < 0:
        raise SystemExit(f"{k}={globals()[k]}; it must be 0 or more")
for k in ('beta1', 'beta2'):
    if not 0 <= globals()[k] < 1:
        raise SystemExit(f"{k}={globals()[k]}; it must be in [0, 1) (AdamW's defaults here: 0.9 and 0.95)")
if token_rounding and not eval_only and n_layer > n_dense_layers and batch_size * block_size < rounding_tile:
    raise SystemExit(f"token_rounding=True with rounding_tile={rounding_tile}, but a micro-batch has only "
                     f"batch_size*block_size={batch_size * block_size} tokens, so every expert would round to 0 "
                     f"and drop all its tokens. Lower rounding_tile, or raise batch_size or block_size")
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
CUDA_GRAPH_MODES = ('reduce-overhead', 'max-autotune') # the modes that replay the compiled step as CUDA graphs
if compile_mode not in COMPILE_MODES:
    raise SystemExit(f"compile_mode={compile_mode!r}; use one of {COMPILE_MODES} (it applies with compile=True)")
if ddp_bucket_mb <= 0:
    raise SystemExit(f"ddp_bucket_mb={ddp_bucket_mb}; use a positive size in MiB (25 is DDP's default)")
if ep_size < 0:
    raise SystemExit(f"ep_size={ep_size}; use 0 (off) or the number of ranks that split the experts")
if fsdp and ep_size > 0:
    raise SystemExit("fsdp=True with ep_size>0 is not supported: FSDP2 would shard the expert slices that EP "
                     "already split. Use EP with data parallelism (fsdp=False), or FSDP2 alone (ep_size=0)")
if ep_size > 0 and n_expert % ep_size:
    raise SystemExit(f"n_expert={n_expert} is not divisible by ep_size={ep_size}; each rank must own "
                     f"n_expert/ep_size experts, so pick an ep_size that divides n_expert")
if ep_exchange not in EP_EXCHANGES:
    raise SystemExit(f"ep_exchange={ep_exchange!r}; use one of {EP_EXCHANGES}")
if ep_chunks < 1 or (ep_chunks > 1 and ep_exchange != 'gather'):
    raise SystemExit(f"ep_chunks={ep_chunks} with ep_exchange={ep_exchange!r}; use ep_chunks >= 1, and more than 1 "
                     f"only with --ep_exchange=gather (the a2a exchange sizes each piece on the host)")
if adamw_states not in ('float32', 'bfloat16'):
    raise SystemExit(f"adamw_states={adamw_states!r}; use 'float32' or 'bfloat16'")
if ep_size > 0 and ep_exchange == 'gather' and token_rounding:
    raise SystemExit("ep_exchange='gather' needs plain top-K routing, and token_rounding=True gives each rank its "
                     "own number of pairs: use ep_exchange='a2a' or token_rounding=False")

try: # the model's settings first: a misspelt moe_backend is named as such, not as a missing GPU
    GPTConfig(**{f.name: globals()[f.name] for f in fields(GPTConfig) if f.name in globals()})
except ValueError as e:
    raise SystemExit(f"config error: {e}")

# various inits, derived attributes, I/O setup
ddp = int(os.environ.get('RANK', -1)) != -1 # is this a torchrun launch?
if device == 'auto':
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
device_type = device.split(':')[0] # for torch.autocast and the RNG states
try:
    require_device(device)
    if moe_backend != 'torch':
        sonic = moe_backend == 'sonic' # the kernels, which also run in Triton's interpreter, on sm_80 or newer
        own = f"cuda:{os.environ['LOCAL_RANK']}" if ddp and device_type == 'cuda' else device # a rank asks of its GPU
        require_cuda(own, f"moe_backend={moe_backend!r}", interpretable=sonic, sm80=sonic)
except RuntimeError as e:
    raise SystemExit(str(e))
if ddp:
    ddp_rank = int(os.environ['RANK'])
    ddp_local_rank = int(os.environ['LOCAL_RANK'])
    ddp_world_size = int(os.environ['WORLD_SIZE'])
    if gradient_accumulation_steps % ddp_world_size != 0:
        raise SystemExit(f"gradient_accumulation_steps={gradient_accumulation_steps} is global and must be "
                         f"divisible by the {ddp_world_size} DDP ranks; set it to a multiple of {ddp_world_size}")
    gradient_accumulation_steps //= ddp_world_size
    if device_type == 'cuda':
        device = f'cuda:{ddp_local_rank}'
        torch.cuda.set_device(device)
    dist.init_process_group(backend='nccl' if device_type == 'cuda' else 'gloo')
else:
    ddp_rank, ddp_local_rank, ddp_world_size = 0, 0, 1
    if fsdp or ep_size > 0:
        raise SystemExit(f"{'fsdp=True' if fsdp else f'ep_size={ep_size}'} needs a torchrun launch, e.g. "
                         f"torchrun --standalone --nproc_per_node=2 train.py ... (--nproc_per_node=1 works too)")
ep_group = edp_group = None
if ep_size > 0:
    # ranks [0, ep), [ep, 2ep), ... each split all experts; ranks with the same index in their EP
    # group hold the same experts and average those gradients (expert data parallelism)
    if ddp_world_size % ep_size:
        raise SystemExit(f"world size {ddp_world_size} is not divisible by ep_size={ep_size}; "
                         f"launch a multiple of {ep_size} processes or change ep_size")
    for i in range(ddp_world_size // ep_size): # every rank creates every group, as new_group requires
        g = dist.new_group(list(range(i * ep_size, (i + 1) * ep_size)))
        if ddp_rank // ep_size == i:
            ep_group = g
    for j in range(ep_size):
        g = dist.new_group(list(range(j, ddp_world_size, ep_size)))
        if ddp_rank % ep_size == j:
            edp_group = g
master_process = ddp_rank == 0 # this process will do logging, checkpointing etc.

def teardown():
    """Takes the process groups down. gloo may abort a rank that tears down while another is still
    working: meet on every group, then take the EP subgroups down before the default group."""
    if ddp:
        for g in (ep_group, edp_group):
            if g is not None:
                dist.barrier(group=g)
                dist.destroy_process_group(g)
        dist.barrier()
        dist.destroy_process_group()

def exit_process(code):
    """Ends this process. Under torchrun every file is flushed and closed first, then os._exit skips
    the C++ static destructors: there gloo (torch 2.13) now and then aborts a rank that has finished
    ('terminate called without an active exception', with no Python frame left), after the
    checkpoint and the logs are written, and torchrun then fails the whole run."""
    if not ddp:
        sys.exit(code)
    for f in (log_file, load_file):
        if f is not None:
            f.close()
    if wandb_log and master_process:
        wandb.finish()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

def stop_everywhere(err):
    """Stops every rank if rank 0 found err (out_dir and the checkpoint are rank 0's): rank 0 says
    why, the others exit quietly rather than wait in a collective until torchrun kills them."""
    if ddp:
        box = [err]
        dist.broadcast_object_list(box, src=0)
        err = box[0]
    if err:
        teardown()
        raise SystemExit(err if master_process else 1)

def resume_command():
    """This run's command line with --init_from=resume (in place of any --init_from or --overwrite)."""
    args = [shlex.quote(a) for a in sys.argv[1:] if not a.startswith(('--init_from=', '--overwrite='))]
    if not ddp:
        launch = 'python'
    elif int(os.environ.get('LOCAL_WORLD_SIZE', ddp_world_size)) == ddp_world_size: # one node
        launch = f'torchrun --standalone --nproc_per_node={ddp_world_size}'
    else:
        launch = 'torchrun <the same options as this launch>'
    return ' '.join([launch, shlex.quote(sys.argv[0]), *args, '--init_from=resume'])

tokens_per_iter = gradient_accumulation_steps * ddp_world_size * batch_size * block_size
if master_process:
    print(f"tokens per iteration will be: {tokens_per_iter:,}")
err = None # an evaluation writes nothing, so it may read any out_dir
held = next((p for p in (ckpt_path, last_path) if os.path.exists(p)), None) # a run already in out_dir
if master_process and eval_only and init_from == 'scratch' and held:
    print(f"note: eval_only=True evaluates a fresh model; add --init_from=resume to evaluate the run in {out_dir}")
if master_process and not eval_only and init_from == 'scratch' and not overwrite and held:
    err = (f"{out_dir} already holds a run ({held}), which a run from scratch would overwrite: continue it "
           f"with --init_from=resume, choose another --out_dir, or pass --overwrite=True to replace it")
elif master_process and not eval_only:
    if not os.path.isdir(out_dir): # made here: a run that stops before writing anything takes it away again
        atexit.register(lambda: os.path.isdir(out_dir) and not os.listdir(out_dir) and os.rmdir(out_dir))
    try:
        os.makedirs(out_dir, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close() # try a write: permission bits do not stop root
    except OSError as e:
        err = f"cannot write to out_dir {out_dir}: {e.strerror or e}; choose another --out_dir"
stop_everywhere(err)
torch.manual_seed(seed) # the same initial weights on every rank: FSDP2 and EP shard them in place
np.random.seed(seed + ddp_rank)
random.seed(seed + ddp_rank)
if deterministic:
    # our kernels have no atomics, but attention's backward and the embedding's gradient (eager, and as
    # torch.compile writes it) add with them, and torch.compile's reductions and our portable kernels'
    # autotuners pick configs by timings that vary between runs: this takes torch's deterministic
    # versions and one config each. cuBLAS reads its workspace setting when it starts, after this line
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False # its NaN fill of each new tensor costs time, and
                                                                # nothing here reads memory it has not written
torch.backends.cuda.matmul.allow_tf32 = True # allow tf32 on matmul
torch.backends.cudnn.allow_tf32 = True # allow tf32 on cudnn
if dtype == 'auto':
    dtype = 'bfloat16' if device_type == 'cuda' else 'float32'
ptdtypes = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
if dtype not in ptdtypes:
    raise SystemExit(f"dtype={dtype!r}; use 'auto' or one of {', '.join(ptdtypes)}")
ptdtype = ptdtypes[dtype]
ctx = nullcontext() if dtype == 'float32' else torch.amp.autocast(device_type=device_type, dtype=ptdtype)

# data: uint16 token ids in train.bin and val.bin, the vocabulary in meta.pkl
data_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data') # where prepare.py scripts write
data_dir = data_dir or os.path.join(data_root, dataset)
for name in ('train.bin', 'val.bin', 'meta.pkl'):
    if not os.path.exists(os.path.join(data_dir, name)):
        if not os.path.exists(os.path.join(data_root, dataset, 'prepare.py')):
            known = sorted(d for d in os.listdir(data_root) if os.path.exists(os.path.join(data_root, d, 'prepare.py')))
            raise SystemExit(f"unknown dataset '{dataset}': there is no data/{dataset}/prepare.py. "
                             f"Known datasets: {', '.join(known)}")
        out = f" --out_dir={data_dir}" if os.path.abspath(data_dir) != os.path.join(data_root, dataset) else ""
        raise SystemExit(f"dataset '{dataset}' is not prepared: {os.path.join(data_dir, name)} is missing.\n"
                         f"Prepare it first with: python data/{dataset}/prepare.py{out}")
with open(os.path.join(data_dir, 'meta.pkl'), 'rb') as f:
    meta = pickle.load(f) # the vocabulary, a few KB at most: checkpoints keep it, so sample.py needs no data
meta_vocab_size = meta['vocab_size']
if init_from == 'resume' and (checkpoint.get('meta', meta) != meta or
                              checkpoint['model_args']['vocab_size'] != meta_vocab_size):
    raise SystemExit(f"{data_dir} now holds data of another vocabulary than this run trained on (its meta.pkl "
                     f"differs from the checkpoint's): prepare the dataset as it was, or start a new run")
for split in ('train', 'val'):
    n_tokens = len(np.memmap(os.path.join(data_dir, f'{split}.bin'), dtype=np.uint16, mode='r'))
    if n_tokens <= block_size:
        raise SystemExit(f"{split}.bin in {data_dir} has {n_tokens} tokens, fewer than block_size+1="
                         f"{block_size + 1}; use a smaller block_size or more data")

def get_batch(split, gen):
    # recreate np.memmap every batch to avoid a memory leak, as per
    # https://stackoverflow.com/questions/45132940/numpy-memmap-memory-usage-want-to-iterate-once/61472122#61472122
    data = np.memmap(os.path.join(data_dir, f'{split}.bin'), dtype=np.uint16, mode='r')
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=gen)
    x = torch.stack([torch.from_numpy((data[i:i+block_size]).astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy((data[i+1:i+1+block_size]).astype(np.int64)) for i in ix])
    if device_type == 'cuda':
        # pin arrays x,y, which allows us to move them to GPU asynchronously (non_blocking=True)
        x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    else:
        x, y = x.to(device), y.to(device)
    return x, y

# the training batches come from their own generator, saved in checkpoints so a resume replays
# exactly the batches the uninterrupted run would have seen
train_gen = torch.Generator().manual_seed(seed + ddp_rank)

# model init
iter_num = 0
best_val_loss = 1e9
model_args = {f.name: globals()[f.name] for f in fields(GPTConfig) if f.name in globals()}
model_args['vocab_size'] = meta_vocab_size
if init_from == 'resume':
    for k, v in checkpoint['model_args'].items(): # also those train.py has no setting for (vocab_size)
        if k not in ('moe_backend', 'dropout'):
            if k not in config and k in model_args and model_args[k] != v and master_process:
                print(f"note: {k}={v!r} from the checkpoint, not {model_args[k]!r}")
            model_args[k] = v
    iter_num = checkpoint['iter_num']
    best_val_loss = checkpoint['best_val_loss']
try:
    gptconf = GPTConfig(**model_args)
except ValueError as e:
    raise SystemExit(f"config error: {e}")
model = GPT(gptconf)

def fmt_time(s):
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"

def activation_bytes(B, T):
    """A rough lower bound on the memory one training micro-batch of B sequences of T tokens keeps
    for its backward pass, in bytes. It counts, per layer and token, 9 values of width n_embd (norm
    inputs and outputs, q, k, v, the attention output and its projection's input), the router's
    2 n_expert, and for each of the top_k experts the token's gathered copy and weighted output
    (2 n_embd) and the expert's gate, up and activation (4 expert_size); once per token the logits
    and their log-softmax (2 vocab_size, fp32); and the attention matrices where SDPA materialises
    them: torch 2.13's CPU SDPA takes its math path under dropout, which kept about 3.5 fp32 T x T
    matrices per head (measured with T=4096); without dropout, and on CUDA, SDPA keeps O(T)."""
    c = gptconf
    per_token = c.n_layer * (9 * c.n_embd + 2 * c.n_expert + c.top_k * (2 * c.n_embd + 4 * c.expert_size))
    total = B * T * (per_token * ptdtype.itemsize + 2 * c.vocab_size * 4)
    if device_type == 'cpu' and c.dropout > 0:
        total += c.n_layer * B * c.n_head * T * T * 14
    return total

if not eval_only and max_iters > iter_num:
    need = activation_bytes(batch_size, block_size)
    if device_type == 'cuda':
        have = torch.cuda.mem_get_info(device)[1]
    else:
        have = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    if need > have: # every rank finds the same: rank 0 says it
        raise SystemExit(1 if not master_process else
                         f"batch_size={batch_size} x block_size={block_size} cannot train on this {device_type}: "
                         f"one micro-batch needs about {need / 2**30:,.0f} GiB of activations (a rough lower bound), "
                         f"and it has {have / 2**30:,.0f} GiB. Lower batch_size (raising gradient_accumulation_steps "
                         f"keeps the tokens per iteration) or block_size")
    if device_type == 'cpu':
        # an optimistic training speed for a CPU thread: a core reaches some 30-100 GFLOP/s on a large
        # matmul, and a tiny model with long blocks trained at 34 GFLOP/s on one thread (2026-11-30,
        # OMP_NUM_THREADS=1 python train.py with tests/conftest.py's TINY model, --block_size=16384 --batch_size=4)
        flops = model.flops_per_token() * batch_size * block_size * gradient_accumulation_steps
        secs = flops / (50e9 * torch.get_num_threads())
        if secs > 10 and master_process:
            print(f"warning: an iteration ({batch_size * block_size * gradient_accumulation_steps:,} tokens per process) "
                  f"is {flops / 1e12:.1f} TFLOP: {fmt_time(secs)} or more on {torch.get_num_threads()} CPU threads, "
                  f"{fmt_time(secs * (max_iters - iter_num))} for the {max_iters - iter_num:,} iterations left; "
                  f"lower batch_size or block_size, or train on a GPU")

if init_from == 'resume':
    model.load_state_dict(checkpoint['model']) # checkpoints are always whole, whatever the mode that wrote them
torch.manual_seed(seed + ddp_rank) # dropout and the like differ per rank
expert_names = set(model.expert_param_names())
if ep_size > 0:
    model.setup_expert_parallel(ep_group, ep_exchange, ep_chunks) # keep this rank's slice of every layer's experts
model.to(device)
if fsdp:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.device_mesh import init_device_mesh
    mesh = init_device_mesh(device_type, (ddp_world_size,)) # FSDP2's default mesh is CUDA wherever a GPU exists, even for a CPU run
    for block in model.transformer.h: # an all-gather per block; the root holds the (tied) embeddings
        fully_shard(block, mesh=mesh, reshard_after_forward=fsdp_reshard)
    fully_shard(model, mesh=mesh)
if master_process:
    print(f"parameters: {model.get_num_params() / 1e6:.2f}M total, {model.get_num_active_params() / 1e6:.2f}M "
          f"active per token; {len(model.moe_layers())} MoE layers of {n_expert} experts, top_k={top_k}")

# initialize a GradScaler. If enabled=False scaler is a no-op
scaler = torch.amp.GradScaler(device_type, enabled=(dtype == 'float16'))
try:
    optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type, fused=not fsdp,
                                           state_dtype=getattr(torch, adamw_states)) # foreach AdamW for FSDP2's sharded parameters
except ValueError as e:
    raise SystemExit(f"adamw_states={adamw_states!r}: {e}; or use --adamw_states=float32" if adamw_states != 'float32'
                     else f"optimizer: {e}")
opt_names = model.optimizer_param_names() # optimizer state index -> parameter name
# TritonAdamW (CUDA) or a fused AdamW clips inside its update (clipped_fused_step), saving
# clip_grad_norm_'s read and write of every gradient; not under an enabled GradScaler (fp16), which
# unscales the gradients itself
fold_clip = grad_clip != 0.0 and not scaler.is_enabled() and folds_clip(optimizer)

def gather_experts(t):
    """This rank's slice of an expert tensor -> all experts (concatenated over the EP group)."""
    parts = [torch.empty_like(t) for _ in range(ep_size)]
    dist.all_gather(parts, t.contiguous(), group=ep_group)
    return torch.cat(parts)

def full_tensor(name, t):
    """A parameter or optimizer-state tensor as the single-process model holds it."""
    if fsdp and hasattr(t, 'full_tensor'):
        t = t.full_tensor() # a collective: every rank calls it
    if ep_size > 0 and name in expert_names and t.dim() > 0:
        t = gather_experts(t)
    return t.cpu()

def local_tensor(name, t, like):
    """The inverse of full_tensor: the slice or shard of a whole tensor that this rank holds."""
    if ep_size > 0 and name in expert_names and t.dim() > 0:
        E_local = n_expert // ep_size
        r = dist.get_rank(ep_group)
        t = t[r * E_local:(r + 1) * E_local]
    if fsdp and hasattr(like, 'device_mesh') and t.dim() > 0:
        from torch.distributed.tensor import distribute_tensor
        t = distribute_tensor(t.to(like.device), like.device_mesh, like.placements)
    return t

if init_from == 'resume':
    osd = checkpoint['optimizer']
    if fsdp or ep_size > 0:
        params = dict(model.named_parameters())
        osd['state'] = {i: {k: local_tensor(opt_names[i], v, params[opt_names[i]]) for k, v in st.items()}
                        for i, st in osd['state'].items()}
    optimizer.load_state_dict(osd)
    scaler.load_state_dict(checkpoint.get('scaler', {}))
    rng = checkpoint['rng']
    if len(rng) == ddp_world_size: # restore last, after model init has drawn its random numbers
        r = rng[ddp_rank]
        as_bytes = lambda l: torch.tensor(l, dtype=torch.uint8)
        torch.set_rng_state(as_bytes(r['torch']))
        if device_type == 'cuda' and r['cuda'] is not None:
            torch.cuda.set_rng_state(as_bytes(r['cuda']))
        np.random.set_state((r['numpy'][0], np.array(r['numpy'][1], dtype=np.uint32), *r['numpy'][2:]))
        random.setstate(r['python'])
        train_gen.set_state(as_bytes(r['sampler']))
    else:
        if master_process:
            print(f"note: the checkpoint was written by {len(rng)} ranks and this run has {ddp_world_size}, "
                  f"so the data order differs from an uninterrupted run")
        train_gen.manual_seed(seed + ddp_rank + 1000 * iter_num) # do not replay the first batches
    checkpoint = None # free up memory

# 16-bit copies of the expert weights, written by TritonAdamW's update and read by the forward, made after
# any resume; where they apply (not under EP, whose expert calls cast, nor FSDP2, whose optimizer is torch's)
copies = expert_copies and model.keep_expert_copies(optimizer, ptdtype)
raw_model = model # the plain GPT (FSDP2 shards it in place): state_dict, moe_layers, estimate_mfu
# one process only: DDP's all-reduce and EP's sums change the gradients after the kernels wrote them
# (GradSquares would find that and read them, for nothing). Not under CUDA graphs, whose memory pool
# must track every tensor the step leaves alive, and the partial sums are not the graph's outputs
grad_squares = None
if (kernel_grad_norm and fold_clip and moe_backend == 'sonic' and not ddp and sonic_kernels is not None
        and not (compile and compile_mode in CUDA_GRAPH_MODES)):
    grad_squares = sonic_kernels.GRAD_SQUARES = sonic_kernels.GradSquares()
ddp_model = None
if ddp and not fsdp and ep_size == 0:
    # broadcast_buffers=False: the MoE buffers are either kept equal by the model itself (expert_bias,
    # updated from all-reduced loads) or are rank-local on purpose (load_accum). gradient_as_bucket_view:
    # the gradients live in the all-reduce buckets, with no copy into them and back
    model = ddp_model = DDP(model, device_ids=[ddp_local_rank] if device_type == 'cuda' else None,
                            broadcast_buffers=False, gradient_as_bucket_view=True, bucket_cap_mb=ddp_bucket_mb)
if compile and ddp and compile_mode in CUDA_GRAPH_MODES:
    # CUDA graphs were measured on one GPU only; DDP's hooks, FSDP2's and EP's collectives around
    # replayed graphs have not run on GPUs, so a launch of several processes compiles without them
    if master_process:
        print(f"note: compile_mode={compile_mode!r} (CUDA graphs) is for one process; under torchrun it runs as 'default'")
    compile_mode = 'default'
if compile:
    print("compiling the model... (takes a ~minute)")
    # after DDP, so that the compiler splits the graph at DDP's buckets and each bucket's all-reduce
    # runs while the backward goes on; compiled before DDP, one backward graph hands every gradient
    # over at its end and the whole all-reduce waits for it
    model = torch.compile(model, mode=compile_mode) # requires PyTorch 2.0
eval_model = model # compiled; DDP's forward syncs nothing under no_grad
graphed = compile and device_type == 'cuda' and compile_mode in CUDA_GRAPH_MODES
keep_grads = graphed and gradient_accumulation_steps > 1
if keep_grads:
    # a CUDA graph's outputs live in memory that its next replay reuses, so with gradient accumulation the
    # gradients are added into .grad tensors kept from the start (zeroed, not freed, each step): a .grad left
    # unset would take over the backward graph's output, which the next micro-step's replay overwrites.
    # With one micro-step the optimizer reads that output before the next replay, and keeping the fp32
    # gradients through the forward would cost memory and time (h200_moe: 7 GiB and 6 ms an iteration).
    # Every parameter of the GPT gets a gradient every step, so a zeroed .grad changes no update
    for param in model.parameters():
        if param.requires_grad:
            param.grad = torch.zeros_like(param)

@torch.no_grad()
def estimate_loss():
    """Mean loss of eval_iters batches per split, averaged over the ranks. The batches come from a
    generator seeded afresh at every evaluation, so successive evaluations score the same text."""
    out = {}
    eval_model.eval()
    for split in ['train', 'val']:
        gen = torch.Generator().manual_seed(seed + 7919 * (ddp_rank + 1))
        losses = torch.zeros(eval_iters, device=device)
        for k in range(eval_iters):
            X, Y = get_batch(split, gen)
            if graphed:
                torch.compiler.cudagraph_mark_step_begin()
            with ctx:
                logits, loss = eval_model(X, Y)
            losses[k] = loss
        mean = losses.mean()
        if ddp:
            dist.all_reduce(mean) # sum; every rank gets the same value, so all take the same decisions
            mean /= ddp_world_size
        out[split] = mean.item()
    eval_model.train()
    return out

# learning rate decay scheduler (cosine with warmup)
def get_lr(it):
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / max(1, lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)

def rng_states():
    """This rank's random states as plain lists and numbers: loadable with weights_only=True, and
    gatherable with all_gather_object, which fails to unpickle tensors in torch 2.13."""
    np_state = np.random.get_state()
    return {'torch': torch.get_rng_state().tolist(),
            'cuda': torch.cuda.get_rng_state().tolist() if device_type == 'cuda' else None,
            'numpy': (np_state[0], np_state[1].tolist(), *np_state[2:]),
            'python': random.getstate(),
            'sampler': sampler_state.tolist()} # the state that drew the batch waiting in X, Y

def save_checkpoint(path):
    """Writes the run's state to path (ckpt_path or last_path) on every rank's behalf; a collective."""
    global last_ckpt_iter, last_ckpt_path
    states = [None] * ddp_world_size
    if ddp:
        dist.all_gather_object(states, rng_states()) # every rank's, so a resume continues each exactly
    else:
        states[0] = rng_states()
    model_sd, opt_sd = raw_model.state_dict(), optimizer.state_dict()
    if fsdp or ep_size > 0: # whole tensors, so any world size (one process too) can resume or evaluate
        model_sd = {k: full_tensor(k, v) for k, v in model_sd.items()}
        opt_sd = {'state': {i: {k: full_tensor(opt_names[i], v) for k, v in st.items()} for i, st in opt_sd['state'].items()},
                  'param_groups': opt_sd['param_groups']}
    err = None
    if master_process:
        checkpoint = {'model': model_sd, 'optimizer': opt_sd,
                      'scaler': scaler.state_dict(), 'model_args': model_args, 'iter_num': iter_num,
                      'best_val_loss': best_val_loss, 'config': config, 'rng': states, 'meta': meta}
        tmp_path = path + '.tmp'
        try:
            torch.save(checkpoint, tmp_path)
            os.replace(tmp_path, path) # atomic: a crash while saving leaves the previous checkpoint whole
        except Exception as e:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)
            kept = (f"{last_ckpt_path} still holds iter {last_ckpt_iter}; resume from it with: {resume_command()}"
                    if last_ckpt_iter is not None else "this run wrote no checkpoint before")
            why = ("no space left on device" if isinstance(e, OSError) and e.errno == errno.ENOSPC
                   else f"{type(e).__name__}: {e}")
            err = f"failed to write the checkpoint of iter {iter_num} ({why}); {kept}"
    stop_everywhere(err)
    if master_process and path == ckpt_path and os.path.exists(last_path):
        os.remove(last_path) # older than the ckpt.pt just written, so no resume may take it
    last_ckpt_iter, last_ckpt_path = iter_num, path
    if master_process:
        print(f"saved checkpoint to {path}")

def sync_expert_parallel_grads():
    """EP has no DDP wrapper: average the gradients by hand. Replicated weights average over all
    ranks. An expert's gradient already sums what every rank of its EP group sent it, so it sums
    over the ranks holding the same experts and divides by the world size too: both become the
    gradient of the mean loss over the global batch."""
    for name, p in raw_model.named_parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, group=edp_group if name in expert_names else None)
        p.grad /= ddp_world_size

def expert_parallel_grad_norm():
    """The gradient norm of the whole model when each EP rank holds different experts."""
    sq = {True: torch.zeros((), device=device), False: torch.zeros((), device=device)}
    for name, p in raw_model.named_parameters():
        sq[name in expert_names] += p.grad.float().square().sum()
    dist.all_reduce(sq[True], group=ep_group) # each EP group holds every expert once
    return (sq[True] + sq[False]).sqrt()

def clip_expert_parallel_grads(max_norm):
    """clip_grad_norm_ over the whole model when each EP rank holds different experts."""
    coef = (max_norm / (expert_parallel_grad_norm() + 1e-6)).clamp(max=1.0)
    for p in raw_model.parameters():
        p.grad.mul_(coef)

def stop_if_nonfinite():
    """Stops the run if any loss since the last check was NaN or inf. Called at every log, at every
    evaluation and on a NaN or inf eval loss, before any checkpoint is written, so a diverged model
    never overwrites the last good checkpoint."""
    flag = nonfinite.int()
    if ddp:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item():
        kept = (f"The last good checkpoint, {last_ckpt_path} (iter {last_ckpt_iter}), is kept."
                if last_ckpt_iter is not None else "No checkpoint was written by this run.")
        teardown()
        raise SystemExit(f"stopping: the loss became NaN or inf at or before iter {iter_num} (training losses are "
                         f"checked every log_interval={log_interval} iters, eval losses at each evaluation). {kept}\n"
                         f"Try a lower learning_rate, a smaller grad_clip, or dtype='bfloat16' instead of float16.")

# logging
log_file = load_file = None
def drop_records_from(path, it):
    """Keeps the records of path that are of iterations before it: a resumed run redoes the others
    (those the checkpoint's evaluation wrote, and those an interrupted run logged after its last
    checkpoint), so it appends no duplicates. A line cut short by a crash goes too."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        keep = []
        for line in f:
            try:
                if json.loads(line)['iter'] < it:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                pass
    with open(path + '.tmp', 'w') as f:
        f.writelines(keep)
    os.replace(path + '.tmp', path)

if wandb_log and master_process:
    try:
        import wandb
    except ImportError:
        raise SystemExit("wandb_log=True but wandb is not installed: pip install wandb (or drop --wandb_log=True)")
    wandb.init(project=wandb_project, name=wandb_run_name, config=config)
log_paths = None # an evaluation only prints: the run's logs stay as they are
if master_process and not eval_only:
    log_paths = os.path.join(out_dir, 'log.jsonl'), os.path.join(out_dir, 'expert_load.jsonl')
    if init_from == 'resume': # a resumed run appends to the logs of the run it continues
        for path in log_paths:
            drop_records_from(path, iter_num)

def log(d):
    # the logs open at the first record: a run from scratch that fails before it (--overwrite=True into a
    # run, a compile error) leaves the old run's logs beside its checkpoint
    global log_file, load_file
    if log_paths is not None and log_file is None:
        log_file, load_file = (open(path, 'a' if init_from == 'resume' else 'w') for path in log_paths)
    if log_file is not None:
        log_file.write(json.dumps(d) + '\n')
        log_file.flush()

# training loop
moe_layers = raw_model.moe_layers()
load = torch.zeros(len(moe_layers), n_expert, dtype=torch.long, device=device) # tokens per expert, per layer
rounding = torch.zeros(2, dtype=torch.long, device=device) # pairs dropped and padded by token rounding
nonfinite = torch.zeros((), dtype=torch.bool, device=device) # did any loss go NaN or inf since the last check
last_ckpt_iter = iter_num if init_from == 'resume' else None # the latest checkpoint's iteration and file
last_ckpt_path = resume_path if init_from == 'resume' else None
sampler_state = train_gen.get_state()
X, Y = get_batch('train', train_gen) # fetch the very first batch
t0 = time.time()
t_start, iter_start = t0, iter_num
iters_since_log = 0
train_time = 0.0 # seconds spent in training iterations (evaluations and checkpoints left out), for the ETA

def stop_run(signum):
    """Ends the run at this iteration boundary on a stop request: saves, says how to resume, exits."""
    stop_if_nonfinite() # a diverged model must not replace the last good checkpoint
    if save_checkpoints and iter_num != last_ckpt_iter and iter_num > 0:
        save_checkpoint(ckpt_path if always_save_checkpoint else last_path) # not evaluated: the best stays
        saved = f"saved {last_ckpt_path} at iter {iter_num}"
    elif last_ckpt_iter is not None:
        saved = f"{last_ckpt_path} holds iter {last_ckpt_iter}"
    else:
        saved = ("nothing to save before the first iteration" if save_checkpoints else
                 "no checkpoint written (save_checkpoints=False)")
    teardown()
    if master_process:
        resume = f"; resume with: {resume_command()}" if last_ckpt_iter is not None else ""
        print(f"stopped by {signal.Signals(signum).name} at iter {iter_num}: {saved}{resume}", file=sys.stderr)
    # alone: the shell's convention for a process ended by a signal. Under torchrun: 0, since a rank
    # that fails makes torchrun kill the others, perhaps mid-save; torchrun, signalled itself when
    # Ctrl-C or a scheduler stops the job, exits with its own code
    exit_process(0 if ddp else 128 + signum)

while True:

    # a stop request (Ctrl-C, SIGTERM) ends the run at the end of an iteration. Every rank must stop
    # at the same one for the collective save, so they agree here: one tiny all_reduce per
    # iteration, under torchrun only. At max_iters the run ends and saves as usual
    if iter_num < max_iters and not eval_only:
        stop = stop_signal
        if ddp:
            flag = torch.tensor(stop_signal, device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = flag.item()
        if stop:
            stop_run(stop)

    if copies:
        optimizer.refresh_copies() # a no-op unless a weight changed outside the optimizer's step

    # determine and set the learning rate for this iteration
    lr = get_lr(iter_num) if decay_lr else learning_rate
    for param_group in optimizer.param_groups:
        param_group['lr'] = lr

    # evaluate the loss on train/val sets and write checkpoints
    if iter_num % eval_interval == 0 or iter_num == max_iters or eval_only:
        t_eval = time.time()
        stop_if_nonfinite()
        losses = estimate_loss()
        if master_process:
            print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            log({'iter': iter_num, 'train_loss': losses['train'], 'val_loss': losses['val']})
            if wandb_log:
                wandb.log({'iter': iter_num, 'train/loss': losses['train'], 'val/loss': losses['val']})
        if eval_only:
            break
        if not all(math.isfinite(v) for v in losses.values()):
            # a finite training loss can still leave NaN weights (an inf gradient, say): the eval
            # loss shows it, and nothing is saved
            nonfinite.fill_(True)
            stop_if_nonfinite()
        best = losses['val'] < best_val_loss
        due = best or always_save_checkpoint or iter_num == max_iters # the end saves too: a resume continues from it
        if save_checkpoints and iter_num > 0 and iter_num != last_ckpt_iter and due:
            best_val_loss = min(best_val_loss, losses['val'])
            save_checkpoint(ckpt_path if best or always_save_checkpoint else last_path)
        t0 += time.time() - t_eval # evaluation and checkpointing do not count toward the training speed
    if iter_num >= max_iters:
        break

    # forward backward update, with optional gradient accumulation to simulate larger batch size
    # and using the GradScaler if data type is float16
    for micro_step in range(gradient_accumulation_steps):
        # DDP and FSDP2 reduce the gradients on the last micro-step only; the others just accumulate
        last = micro_step == gradient_accumulation_steps - 1
        if fsdp:
            raw_model.set_requires_gradient_sync(last)
        sync_ctx = ddp_model.no_sync() if ddp_model is not None and not last else nullcontext()
        with sync_ctx:
            if graphed:
                # a new step: the CUDA graphs may reuse the memory of the last step's outputs, all read by now
                torch.compiler.cudagraph_mark_step_begin()
            with ctx:
                logits, loss = model(X, Y)
                if iter_num == debug_nan_iter:
                    loss = loss * float('nan')
                loss = loss / gradient_accumulation_steps # scale the loss to account for gradient accumulation
            # bookkeeping on the device, read only at log time: no host sync in the hot loop
            nonfinite |= ~torch.isfinite(loss.detach())
            if moe_layers:
                load += torch.stack([m.tokens_per_expert for m in moe_layers])
                rounding += torch.stack([torch.stack([m.rounding_dropped, m.rounding_padded]) for m in moe_layers]).sum(0)
            # immediately async prefetch next batch while model is doing the forward pass on the GPU
            sampler_state = train_gen.get_state()
            X, Y = get_batch('train', train_gen)
            # backward pass, with gradient scaling if training in fp16
            scaler.scale(loss).backward()
    if ep_size > 0:
        sync_expert_parallel_grads()
    if fold_clip:
        # clip the gradient inside the AdamW step (bf16/fp32: the GradScaler is off)
        if ep_size > 0:
            clipped_fused_step(optimizer, grad_clip, norm=expert_parallel_grad_norm())
        else:
            clipped_fused_step(optimizer, grad_clip, params=model.parameters(), squares=grad_squares)
    else:
        # clip the gradient
        if grad_clip != 0.0:
            scaler.unscale_(optimizer)
            if ep_size > 0:
                clip_expert_parallel_grads(grad_clip)
            else:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        # step the optimizer and scaler if training in fp16
        scaler.step(optimizer)
        scaler.update()
    if grad_squares is not None and iter_num == iter_start and master_process:
        print(f"gradient norm: {grad_squares.taken} of the {2 * len(moe_layers)} expert weight gradients' sums of "
              f"squares taken from the kernels")
    # flush the gradients as soon as we can, no need for this memory anymore
    optimizer.zero_grad(set_to_none=not keep_grads)
    raw_model.update_expert_bias() # aux-loss-free balancing; a no-op unless router_type='sigmoid'

    # timing and logging
    iters_since_log += 1
    if iter_num % log_interval == 0:
        stop_if_nonfinite() # on every rank: it is a collective under DDP
        if ddp:
            dist.all_reduce(load) # the expert load of all ranks
            dist.all_reduce(rounding)
        t1 = time.time()
        train_time += t1 - t0
        if master_process:
            dt = (t1 - t0) / iters_since_log # seconds per iteration over the interval
            elapsed = t1 - t_start
            eta = train_time / (iter_num + 1 - iter_start) * (max_iters - iter_num - 1) # the mean so far
            lossf = loss.item() * gradient_accumulation_steps # the last micro-step's loss, on rank 0
            mfu = raw_model.estimate_mfu(batch_size * gradient_accumulation_steps, dt)
            counts = load.tolist() # [layer][expert], summed over the interval and the ranks
            ratios = [max(c) / max(1e-9, sum(c) / len(c)) for c in counts] # max over mean, per layer
            ratio = ' '.join(f"{r:.2f}" for r in ratios)
            msg = (f"iter {iter_num}: loss {lossf:.4f}, lr {lr:.2e}, {dt * 1000:.1f}ms/iter, {tokens_per_iter / dt:,.0f} tok/s, "
                   f"elapsed {fmt_time(elapsed)}, eta {fmt_time(eta)}")
            rec = {'iter': iter_num, 'loss': lossf, 'lr': lr, 'ms_per_iter': dt * 1000,
                   'tok_per_s': tokens_per_iter / dt, 'mfu': mfu, 'elapsed_s': elapsed, 'eta_s': eta}
            if device_type == 'cuda': # mfu counts against the H100/H200 bf16 peak, meaningless on a cpu
                rec['peak_mem_gib'] = torch.cuda.max_memory_allocated() / 2**30
                msg += f", mfu {mfu * 100:.2f}%, mem {rec['peak_mem_gib']:.1f}GiB"
            if moe_layers:
                msg += f" | load max/mean per layer: {ratio}"
            if token_rounding and moe_layers:
                routed = iters_since_log * tokens_per_iter * top_k * len(moe_layers) # pairs before rounding
                dropped, padded = (v / routed for v in rounding.tolist())
                rec.update(rounding_dropped=dropped, rounding_padded=padded)
                msg += f" | rounding dropped {dropped * 100:.2f}% padded {padded * 100:.2f}%"
            print(msg)
            log(rec)
            load_file.write(json.dumps({'iter': iter_num, 'tokens_per_expert': counts}) + '\n')
            load_file.flush()
            if wandb_log: # everything the console and log.jsonl get, and every expert's count
                wandb.log({'iter': iter_num, 'train/step_loss': lossf, 'lr': lr, 'mfu': mfu, # eval's are */loss
                           'tok_per_s': tokens_per_iter / dt, 'ms_per_iter': dt * 1000,
                           **({'peak_mem_gib': rec['peak_mem_gib']} if 'peak_mem_gib' in rec else {}),
                           **({'rounding/dropped': rec['rounding_dropped'], 'rounding/padded': rec['rounding_padded']}
                              if 'rounding_dropped' in rec else {}),
                           **{f"load_layer{l}/max_over_mean": r for l, r in enumerate(ratios)},
                           **{f"load_layer{l}/expert{e}": n for l, c in enumerate(counts) for e, n in enumerate(c)}})
        load.zero_()
        rounding.zero_()
        iters_since_log = 0
        t0 = time.time()
    iter_num += 1

if ddp and device_type == 'cuda': # every rank's peak: EP ranks differ with their experts' load
    peaks = [None] * ddp_world_size
    dist.all_gather_object(peaks, torch.cuda.max_memory_allocated() / 2**30)
    if master_process:
        print("peak memory per rank: " + ", ".join(f"{p:.1f}GiB" for p in peaks))
if master_process:
    print(f"done: iter {iter_num}, {iter_num - iter_start} iterations in {time.time() - t_start:.1f}s; "
          f"checkpoint: {last_ckpt_path if last_ckpt_iter is not None else 'none written'}")
teardown()
exit_process(0)
