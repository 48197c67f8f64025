"""data/*/prepare.py write train.bin and val.bin (uint16, np.memmap) and meta.pkl that train.py reads."""
import pickle
import sys
import importlib.util

import numpy as np
import pytest

from conftest import run, ok


def read(d, split):
    return np.memmap(d / f'{split}.bin', dtype=np.uint16, mode='r')


def test_stdlib(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    ok(run(sys.executable, 'data/stdlib/prepare.py', '--max_bytes=50000', f'--out_dir={a}'))
    ok(run(sys.executable, 'data/stdlib/prepare.py', '--max_bytes=50000', f'--out_dir={b}'))
    train, val = read(a, 'train'), read(a, 'val')
    assert len(train) == 45000 and len(val) == 5000  # the 90/10 split of exactly max_bytes
    assert train.max() < 256 and val.max() < 256
    text = bytes(np.concatenate([train, val]).astype(np.uint8)).decode('utf-8', errors='replace')  # a cut may split a character
    assert text.startswith('# file: ') and 'def ' in text
    meta = pickle.loads((a / 'meta.pkl').read_bytes())
    assert meta == {'vocab_size': 256, 'encoding': 'bytes'}
    for name in ('train.bin', 'val.bin', 'meta.pkl'):  # deterministic
        assert (a / name).read_bytes() == (b / name).read_bytes()
    r = run(sys.executable, 'data/stdlib/prepare.py', '--max_bytes=500', f'--out_dir={tmp_path / "c"}')
    assert r.returncode != 0 and '--max_bytes=500' in r.stderr and 'full Python install' not in r.stderr, r.stderr


@pytest.mark.parametrize('script', ['stdlib', 'shakespeare_char'])
def test_out_dir_that_cannot_be_a_folder(tmp_path, script):
    a_file = tmp_path / 'a_file'
    a_file.write_text('not a folder')
    for out in (a_file, a_file / 'sub'):
        r = run(sys.executable, f'data/{script}/prepare.py', f'--out_dir={out}')
        assert r.returncode != 0 and 'cannot make it a folder' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert a_file.read_text() == 'not a folder'


def test_shakespeare_char_from_local_file(tmp_path):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20
    src = tmp_path / 'my.txt'
    src.write_text(text)
    ok(run(sys.executable, 'data/shakespeare_char/prepare.py', f'--input={src}', f'--out_dir={tmp_path}'))
    meta = pickle.loads((tmp_path / 'meta.pkl').read_bytes())
    assert meta['vocab_size'] == len(set(text)) == len(meta['itos'])
    ids = np.concatenate([read(tmp_path, 'train'), read(tmp_path, 'val')])
    assert len(read(tmp_path, 'train')) == int(len(text) * 0.9)
    assert ''.join(meta['itos'][int(i)] for i in ids) == text  # decodes back to the input
    assert all(meta['stoi'][c] == i for i, c in meta['itos'].items())
    # an input.txt already in out_dir is used without downloading (another text, of another length)
    other = text[::-1] + "Second Citizen:\nWould you proceed especially against Caius Marcius?\n"
    (tmp_path / 'input.txt').write_text(other)
    ok(run(sys.executable, 'data/shakespeare_char/prepare.py', f'--out_dir={tmp_path}'))
    meta = pickle.loads((tmp_path / 'meta.pkl').read_bytes())
    ids = np.concatenate([read(tmp_path, 'train'), read(tmp_path, 'val')])
    assert ''.join(meta['itos'][int(i)] for i in ids) == other


def test_shakespeare_char_bad_input(tmp_path):
    r = run(sys.executable, 'data/shakespeare_char/prepare.py', f'--input={tmp_path / "nope.txt"}',
            f'--out_dir={tmp_path}')
    assert r.returncode != 0 and 'cannot read text file' in r.stderr, r.stderr


@pytest.mark.skipif(all(importlib.util.find_spec(m) for m in ('datasets', 'tiktoken')),
                    reason='datasets and tiktoken are installed, so the script would start a download')
def test_openwebtext_without_packages_says_what_to_install(tmp_path):
    r = run(sys.executable, 'data/openwebtext/prepare.py', f'--out_dir={tmp_path}')
    assert r.returncode != 0 and 'pip install datasets tiktoken' in r.stderr, r.stderr


# data/openwebtext/prepare.py with stand-ins for the two packages it needs, so its writing runs offline: the
# "dataset" is the paragraphs of a folder's docs.txt, a token is a byte, and shard FAIL_AT_SHARD fails as a
# full disk would (FREE_BYTES: what shutil.disk_usage reports)
FAKE_TIKTOKEN = '''
class _Bytes:
    eot_token = 50256
    def encode_ordinary(self, text):
        return list(text.encode())
def get_encoding(name):
    return _Bytes()
'''
FAKE_DATASETS = '''
import os, shutil, collections
import numpy as np
if os.environ.get('FREE_BYTES'):
    usage = collections.namedtuple('usage', 'total used free')
    shutil.disk_usage = lambda path: usage(10**12, 10**12, int(os.environ['FREE_BYTES']))
class Dataset:
    def __init__(self, rows):
        self.rows = rows
    def __len__(self):
        return len(self.rows)
    def __getitem__(self, column):
        return [r[column] for r in self.rows]
    def train_test_split(self, test_size, seed, shuffle):
        k = max(1, round(len(self.rows) * test_size))
        return DatasetDict(train=Dataset(self.rows[k:]), test=Dataset(self.rows[:k]))
    def map(self, fn, remove_columns=(), **kwargs):
        return Dataset([{**{c: v for c, v in r.items() if c not in remove_columns}, **fn(r)} for r in self.rows])
    def shard(self, num_shards, index, contiguous):
        if os.environ.get('FAIL_AT_SHARD') == str(index):
            raise OSError(28, 'No space left on device')
        n = len(self.rows)
        return Dataset(self.rows[n * index // num_shards:n * (index + 1) // num_shards])
    def with_format(self, kind):
        return {'ids': [np.array(r['ids']) for r in self.rows]}
class DatasetDict(dict):
    def map(self, fn, **kwargs):
        return DatasetDict({k: v.map(fn, **kwargs) for k, v in self.items()})
def load_dataset(name, revision=None, num_proc=None):
    with open(os.path.join(name, 'docs.txt')) as f:
        return DatasetDict(train=Dataset([{'text': t} for t in f.read().split('\\n\\n')]))
'''


def test_openwebtext_writes_whole_files_or_keeps_the_old_ones(tmp_path, monkeypatch):
    fake = tmp_path / 'fake'
    fake.mkdir()
    (fake / 'tiktoken.py').write_text(FAKE_TIKTOKEN)
    (fake / 'datasets.py').write_text(FAKE_DATASETS)
    monkeypatch.setenv('PYTHONPATH', str(fake))
    out = tmp_path / 'out'

    def prepare(docs, *args, **env):
        src = tmp_path / f'src{len(docs)}'
        src.mkdir(exist_ok=True)
        (src / 'docs.txt').write_text('\n\n'.join(docs))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        r = run(sys.executable, 'data/openwebtext/prepare.py', f'--hf_name={src}', f'--out_dir={out}', '--num_proc=1',
                *args)
        for k in env:
            monkeypatch.delenv(k)
        return r

    docs = [f"document {i}: " + "words " * (i % 7) for i in range(3000)]
    ok(prepare(docs))
    files = {name: (out / name).read_bytes() for name in ('train.bin', 'val.bin', 'meta.pkl')}
    assert pickle.loads(files['meta.pkl']) == {'vocab_size': 50304, 'encoding': 'gpt2'}
    ids = np.concatenate([read(out, 'val'), read(out, 'train')])  # the fake split puts the first documents in val
    texts = bytes(ids[ids != 50256].astype(np.uint8)).decode()
    assert len(read(out, 'val')) > 0 and (ids == 50256).sum() == len(docs) and texts == ''.join(docs)
    # a second preparation that fails while writing train.bin, or finds too little disk, leaves the first whole
    other = [d.upper() for d in docs[:2000]]
    for env, says in (({'FAIL_AT_SHARD': '3'}, 'failed (No space left on device); the data prepared there before is '
                                                'unchanged'), ({'FREE_BYTES': '1000'}, 'which has 0.0 MB free')):
        r = prepare(other, **env)
        assert r.returncode != 0
        for name, before in files.items():
            assert (out / name).read_bytes() == before, (env, name)
        assert sorted(p.name for p in out.iterdir()) == ['meta.pkl', 'train.bin', 'val.bin']  # no temporary files
        assert says in r.stderr and 'Traceback' not in r.stderr, r.stderr
    r = prepare(other, '--val_fraction=0')
    assert r.returncode != 0 and '--val_fraction=0.0; use a share' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert all((out / name).read_bytes() == before for name, before in files.items())
    ok(prepare(other, '--val_fraction=0.1'))
    ids = np.concatenate([read(out, 'val'), read(out, 'train')])
    assert bytes(ids[ids != 50256].astype(np.uint8)).decode() == ''.join(other)
    assert (read(out, 'val') == 50256).sum() == 200  # a tenth of the documents
