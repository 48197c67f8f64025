"""
The embedded default corpus: the source code of the running Python's standard library, as bytes.
Needs no network and no tokenizer: vocab_size is 256 and a token is one raw byte.

    python data/stdlib/prepare.py                      # ~12 MB on CPython 3.11
    python data/stdlib/prepare.py --max_bytes=1000000  # a smaller corpus

Writes train.bin and val.bin (uint16 tokens, read with np.memmap) and meta.pkl. The .py files
under the stdlib directory are taken in sorted order, leaving out tests and installed packages,
each preceded by a '# file: <path>' line. The first 90% of the bytes is train, the rest val.
The result is deterministic for a given Python version; another version gives another corpus.
"""
import os
import pickle
import argparse
import sysconfig

import numpy as np

SKIP_DIRS = {'test', 'tests', 'idle_test', 'site-packages', 'dist-packages', '__pycache__'}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--max_bytes', type=int, default=40_000_000, help='cap on the corpus size')
parser.add_argument('--out_dir', default=os.path.dirname(os.path.abspath(__file__)), help='where to write')
args = parser.parse_args()
if args.max_bytes < 1000:
    raise SystemExit(f"--max_bytes={args.max_bytes}; use at least 1000, enough for a train and a val split")
try:  # first, so a bad --out_dir stops before any work
    os.makedirs(args.out_dir, exist_ok=True)
except OSError as e:
    raise SystemExit(f"--out_dir={args.out_dir}: cannot make it a folder ({e.strerror}); pick another path")

def source_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)  # sorted: a deterministic walk
        for name in sorted(filenames):
            if name.endswith('.py'):
                yield os.path.join(dirpath, name)

root = sysconfig.get_paths()['stdlib']
chunks, total = [], 0
for path in source_files(root):
    if total >= args.max_bytes:
        break
    with open(path, 'rb') as f:
        chunk = f"# file: {os.path.relpath(path, root)}\n".encode() + f.read() + b"\n"
    chunks.append(chunk)
    total += len(chunk)
data = b"".join(chunks)[:args.max_bytes]
if len(data) < 1000:
    raise SystemExit(f"found only {len(data)} bytes of .py source under {root}; is this a full Python install?")

n = len(data)
tokens = np.frombuffer(data, dtype=np.uint8).astype(np.uint16)
train_ids, val_ids = tokens[:int(n * 0.9)], tokens[int(n * 0.9):]
train_ids.tofile(os.path.join(args.out_dir, 'train.bin'))
val_ids.tofile(os.path.join(args.out_dir, 'val.bin'))
with open(os.path.join(args.out_dir, 'meta.pkl'), 'wb') as f:
    pickle.dump({'vocab_size': 256, 'encoding': 'bytes'}, f)
print(f"{len(chunks)} files from {root}: {n:,} bytes; train {len(train_ids):,} tokens, val {len(val_ids):,} tokens")
print(f"wrote train.bin, val.bin, meta.pkl to {args.out_dir}")
