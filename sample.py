"""
Sample from a model trained by train.py.

$ python sample.py --out_dir=out-default --start="def " --num_samples=3 --max_new_tokens=300

The text is decoded with the vocabulary of the data the model was trained on (its meta.pkl, which the
checkpoint keeps): raw bytes for stdlib, characters for shakespeare_char, GPT-2 BPE (tiktoken) for openwebtext.
"""
import os
import pickle
from contextlib import nullcontext

import torch

from model import GPTConfig, GPT, load_checkpoint
from moe import require_cuda, require_device

# -----------------------------------------------------------------------------
out_dir = 'out' # the run to sample from: out_dir/ckpt.pt (ckpt_last.pt where there is no ckpt.pt)
start = "\n" # the prompt; or "FILE:prompt.txt" to read it from a file
num_samples = 3 # number of samples to draw
max_new_tokens = 500 # number of tokens generated in each sample
temperature = 0.8 # 1.0 = no change, < 1.0 = less random, > 1.0 = more random, in predictions
top_k = 200 # sampling: retain only the top_k most likely tokens, 0 all of them (not the model's experts per token)
seed = 1337
device = 'auto' # 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ...
dtype = 'auto' # 'auto' (bfloat16 on cuda, float32 elsewhere), 'float32', 'bfloat16' or 'float16'
moe_backend = '' # '' keeps the checkpoint's, or 'torch' on a cpu (the GPU backends cannot run there)
compile = False # use PyTorch 2.0 to compile the model to be faster
# a training config passed here: the checkpoint holds the run's settings, so only its out_dir is needed
_file_hint = "A training config is train.py's; to sample from its run: python sample.py --out_dir={out_dir}"
# -----------------------------------------------------------------------------
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configurator.py')).read()) # overrides from command line or config file
# -----------------------------------------------------------------------------

torch.manual_seed(seed)
if device == 'auto':
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
device_type = device.split(':')[0]
try:
    require_device(device)
except RuntimeError as e:
    raise SystemExit(str(e))
if dtype == 'auto':
    dtype = 'bfloat16' if device_type == 'cuda' else 'float32'
ptdtypes = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
if dtype not in ptdtypes:
    raise SystemExit(f"dtype={dtype!r}; use 'auto' or one of {', '.join(ptdtypes)}")
if temperature <= 0:
    raise SystemExit(f"temperature={temperature}; it must be above 0 (for greedy decoding use --top_k=1)")
if top_k < 0:
    raise SystemExit(f"top_k={top_k}; it must be 1 or more (it keeps the top_k most likely tokens), or 0 for all")
top_k = top_k or None # generate's None: no cut
if num_samples < 1 or max_new_tokens < 0:
    raise SystemExit(f"num_samples={num_samples}, max_new_tokens={max_new_tokens}; use at least 1 and 0")
ptdtype = ptdtypes[dtype]
ctx = nullcontext() if dtype == 'float32' else torch.amp.autocast(device_type=device_type, dtype=ptdtype)

# model
ckpt_path = os.path.join(out_dir, 'ckpt.pt')
last_path = os.path.join(out_dir, 'ckpt_last.pt') # always_save_checkpoint=False: a run stopped before it had a best
if not os.path.exists(ckpt_path) and os.path.exists(last_path):
    ckpt_path = last_path
if not os.path.exists(ckpt_path):
    raise SystemExit(f"no checkpoint at {ckpt_path}; train one first (python train.py configs/default.py) "
                     f"or point --out_dir at a run")
checkpoint = load_checkpoint(ckpt_path, map_location=device)
model_args, state_dict, train_config = checkpoint['model_args'], checkpoint['model'], checkpoint['config']
if moe_backend:
    model_args['moe_backend'] = moe_backend
elif device_type == 'cpu' and model_args['moe_backend'] != 'torch':
    model_args['moe_backend'] = 'torch' # the GPU backends cannot run here; 'torch' computes the same thing
try:
    gptconf = GPTConfig(**model_args) # checks moe_backend names a backend, before any GPU check
    if gptconf.moe_backend != 'torch':
        require_cuda(device, f"moe_backend={gptconf.moe_backend!r}", sm80=gptconf.moe_backend == 'sonic')
except ValueError as e:
    raise SystemExit(f"config error: {e}")
except RuntimeError as e:
    raise SystemExit(str(e))
model = GPT(gptconf)
model.load_state_dict(state_dict)
model.eval()
model.to(device)
if compile:
    model = torch.compile(model) # requires PyTorch 2.0 (optional)

# the tokenizer of the training data
data_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
meta_path = os.path.join(train_config['data_dir'] or os.path.join(data_root, train_config['dataset']), 'meta.pkl')
meta = checkpoint.get('meta') # train.py saves the vocabulary in the checkpoint; older checkpoints only name the data
if meta is None:
    if not os.path.exists(meta_path):
        raise SystemExit(f"{meta_path}, the vocabulary of the training data, is missing; "
                         f"run python data/{train_config['dataset']}/prepare.py")
    with open(meta_path, 'rb') as f:
        meta = pickle.load(f)
    if meta['vocab_size'] != model_args['vocab_size']:
        raise SystemExit(f"{meta_path} has a vocabulary of {meta['vocab_size']}, the model {model_args['vocab_size']}: "
                         f"the data was prepared again with another one; prepare it as it was")
if 'stoi' in meta: # characters
    stoi, itos = meta['stoi'], meta['itos']
    encode = lambda s: [stoi[c] for c in s if c in stoi] # characters outside the vocabulary are dropped
    decode = lambda l: ''.join([itos[i] for i in l])
elif meta.get('encoding') == 'bytes':
    encode = lambda s: list(s.encode('utf-8'))
    decode = lambda l: bytes(l).decode('utf-8', errors='replace') # a sample may cut a character in two
elif meta.get('encoding') == 'gpt2':
    try:
        import tiktoken
        enc = tiktoken.get_encoding("gpt2") # downloads its vocabulary once, then reads it from a cache
    except Exception as e: # not installed, or offline on first use: many exception types
        raise SystemExit(f"this model's text is GPT-2 BPE, and the gpt2 encoding could not be loaded "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).\n"
                         f"pip install tiktoken, and run once with the network so it caches the vocabulary")
    encode = lambda s: enc.encode(s, allowed_special={"<|endoftext|>"})
    decode = lambda l: enc.decode([i for i in l if i < enc.n_vocab]) # skip the padding ids past 50256
else:
    raise SystemExit(f"{meta_path} names no known encoding: {sorted(meta)}")

# encode the beginning of the prompt
if start.startswith('FILE:'):
    try:
        with open(start[5:], 'r', encoding='utf-8') as f:
            start = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"--start={start}: cannot read the prompt file as UTF-8 text ({type(e).__name__}: {e})")
start_ids = encode(start) or encode("\n")
x = torch.tensor(start_ids, dtype=torch.long, device=device)[None, ...]

# run generation
with torch.no_grad():
    with ctx:
        for k in range(num_samples):
            y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k)
            print(decode(y[0].tolist()))
            print('---------------')
