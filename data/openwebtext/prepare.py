"""
OpenWebText (~9B GPT-2 tokens, ~54 GB of download cache), as in nanoGPT. Needs the network and
`pip install datasets` (tiktoken is in requirements.txt); takes hours on a few cores.

    python data/openwebtext/prepare.py --num_proc=16

Writes train.bin (~17 GB) and val.bin (~8.5 MB) as uint16 GPT-2 BPE ids, read with np.memmap,
and meta.pkl naming the encoding. A 0.05% slice of the documents is the val split (--val_fraction).
The files are written whole or not at all: a run stopped or failing part way leaves what out_dir
held before.
With a datasets release that no longer runs dataset scripts, if the default repository fails to
load, try --revision=refs/convert/parquet (the hub's parquet export).

Your own text, tokenized the same way: --hf_name takes a folder of .txt files, each line a document
(datasets' text loader), --val_fraction gives val enough of a smaller corpus, and the data goes
where --dataset finds it:

    python data/openwebtext/prepare.py --hf_name=path/to/texts --out_dir=data/mytext --val_fraction=0.01
    python train.py --dataset=mytext ...
"""
import os
import pickle
import shutil
import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--num_proc', type=int, default=max(1, os.cpu_count() // 2), help='worker processes')
    parser.add_argument('--hf_name', default='Skylion007/openwebtext',
                        help='a dataset on the Hugging Face hub, or a folder of .txt files')
    parser.add_argument('--revision', default=None, help='a branch of the dataset repository')
    parser.add_argument('--val_fraction', type=float, default=0.0005, help="the share of the documents in val")
    parser.add_argument('--out_dir', default=os.path.dirname(os.path.abspath(__file__)), help='where to write')
    args = parser.parse_args()
    if not 0 < args.val_fraction < 1:
        raise SystemExit(f"--val_fraction={args.val_fraction}; use a share of the documents between 0 and 1")
    try:  # first, so a bad --out_dir stops before any work
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"--out_dir={args.out_dir}: cannot make it a folder ({e.strerror}); pick another path")
    try:  # imported here: the rest of the repo needs neither package
        import tiktoken
        from datasets import load_dataset
    except ImportError as e:
        raise SystemExit(f"{e}. OpenWebText needs two more packages: pip install datasets tiktoken")

    try:
        enc = tiktoken.get_encoding("gpt2")
        dataset = load_dataset(args.hf_name, revision=args.revision, num_proc=args.num_proc)
    except Exception as e:  # offline shows up as one of many exception types
        raise SystemExit(f"could not load the gpt2 encoding or '{args.hf_name}' ({type(e).__name__}: {e}).\n"
                         f"This script needs the network. Offline, use the embedded corpus instead: "
                         f"python data/stdlib/prepare.py")

    split = dataset["train"].train_test_split(test_size=args.val_fraction, seed=2357, shuffle=True)
    split['val'] = split.pop('test')

    def process(example):
        ids = enc.encode_ordinary(example['text'])  # ignores special tokens
        ids.append(enc.eot_token)  # 50256, <|endoftext|> ends each document
        return {'ids': ids, 'len': len(ids)}

    tokenized = split.map(process, remove_columns=['text'], desc="tokenizing", num_proc=args.num_proc)
    # Each split is written under a temporary name and renamed once whole, then meta.pkl, after the old
    # one is gone: a run stopped or failing here leaves the data prepared before as it was (or no
    # meta.pkl, which train.py reads as "not prepared"), never a train.bin cut short beside an old
    # val.bin and meta.pkl, which train.py would read without a word
    lengths = {name: int(np.sum(dset['len'], dtype=np.uint64)) for name, dset in tokenized.items()}
    need, free = 2 * sum(lengths.values()), shutil.disk_usage(args.out_dir).free
    if need > free:  # checked first: np.memmap makes a sparse file, and a full disk kills the process (SIGBUS)
        size = lambda b: f"{b / 1e9:.1f} GB" if b >= 1e9 else f"{b / 1e6:.1f} MB"
        raise SystemExit(f"the tokens need {size(need)} in {args.out_dir}, which has {size(free)} free (files "
                         f"already there stay until the new ones are whole); free some space or pass another --out_dir")
    tmp = {name: os.path.join(args.out_dir, f'{name}.bin.tmp') for name in tokenized}
    try:
        for name, dset in tokenized.items():
            # uint16: enc.max_token_value < 2**16
            arr = np.memmap(tmp[name], dtype=np.uint16, mode='w+', shape=(lengths[name],))
            idx, total_batches = 0, min(1024, len(dset))  # a shard holds at least one document
            for batch_idx in range(total_batches):  # write in shards so the whole split never sits in memory
                batch = dset.shard(num_shards=total_batches, index=batch_idx, contiguous=True).with_format('numpy')
                arr_batch = np.concatenate(batch['ids'])
                arr[idx: idx + len(arr_batch)] = arr_batch
                idx += len(arr_batch)
            arr.flush()
            del arr
    except BaseException as e:
        for path in tmp.values():
            if os.path.exists(path):
                os.remove(path)
        if isinstance(e, OSError):
            raise SystemExit(f"writing the tokens to {args.out_dir} failed ({e.strerror or e}); the data prepared "
                             f"there before is unchanged")
        raise
    meta_path = os.path.join(args.out_dir, 'meta.pkl')
    if os.path.exists(meta_path):
        os.remove(meta_path)
    for name, path in tmp.items():
        os.replace(path, os.path.join(args.out_dir, f'{name}.bin'))
        print(f"{name}: {lengths[name]:,} tokens -> {os.path.join(args.out_dir, f'{name}.bin')}")
    with open(meta_path + '.tmp', 'wb') as f:
        # 50257 padded up to a multiple of 64: the spare logits are never targets and cost nothing
        pickle.dump({'vocab_size': 50304, 'encoding': 'gpt2'}, f)
    os.replace(meta_path + '.tmp', meta_path)


if __name__ == '__main__':
    main()  # the guard matters where worker processes start by re-importing this file (macOS)
