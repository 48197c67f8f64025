"""
Tiny Shakespeare (1 MB), character level, as in nanoGPT.

    python data/shakespeare_char/prepare.py                   # downloads input.txt (needs network)
    python data/shakespeare_char/prepare.py --input my.txt    # any local text file, no network

Writes train.bin and val.bin (uint16 character ids, read with np.memmap) and meta.pkl with
vocab_size, itos and stoi. The first 90% of the characters is train, the rest val.
"""
import os
import pickle
import argparse
import urllib.request

import numpy as np

URL = 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt'

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--input', default='', help='a local text file to use instead of downloading')
parser.add_argument('--out_dir', default=os.path.dirname(os.path.abspath(__file__)), help='where to write')
args = parser.parse_args()
try:  # first, so a bad --out_dir stops before any work
    os.makedirs(args.out_dir, exist_ok=True)
except OSError as e:
    raise SystemExit(f"--out_dir={args.out_dir}: cannot make it a folder ({e.strerror}); pick another path")

if args.input:
    input_path = args.input
else:
    input_path = os.path.join(args.out_dir, 'input.txt')
    if not os.path.exists(input_path):
        print(f"downloading {URL}")
        try:
            with urllib.request.urlopen(URL, timeout=30) as r:
                text = r.read()
        except OSError as e:
            raise SystemExit(f"could not download tiny shakespeare ({e}).\nIf this machine is offline, copy "
                             f"the file here by other means and run: python {__file__} --input path/to/input.txt")
        with open(input_path, 'wb') as f:
            f.write(text)
try:
    with open(input_path, encoding='utf-8') as f:
        data = f.read()
except (OSError, UnicodeDecodeError) as e:
    raise SystemExit(f"cannot read text file '{input_path}': {e}")
if len(data) < 100:
    raise SystemExit(f"'{input_path}' has only {len(data)} characters; give a longer text")

chars = sorted(set(data))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for i, ch in enumerate(chars)}
n = len(data)
train_ids = np.array([stoi[c] for c in data[:int(n * 0.9)]], dtype=np.uint16)
val_ids = np.array([stoi[c] for c in data[int(n * 0.9):]], dtype=np.uint16)
train_ids.tofile(os.path.join(args.out_dir, 'train.bin'))
val_ids.tofile(os.path.join(args.out_dir, 'val.bin'))
with open(os.path.join(args.out_dir, 'meta.pkl'), 'wb') as f:
    pickle.dump({'vocab_size': len(chars), 'itos': itos, 'stoi': stoi}, f)
print(f"{n:,} characters, {len(chars)} unique; train {len(train_ids):,} tokens, val {len(val_ids):,} tokens")
print(f"wrote train.bin, val.bin, meta.pkl to {args.out_dir}")
