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
