"""train.py and sample.py end to end, on the CPU: learning, exact resume, safe checkpoints, the NaN
stop, clear errors, and DDP on gloo."""
import ast
import json
import os
import pickle
import shutil
import sys
from dataclasses import fields

import pytest
import torch

from conftest import REPO, TINY, TORCHRUN, run, torchrun, train, ok

sys.path.insert(0, str(REPO))
from model import GPTConfig  # noqa: E402


def read_log(out_dir):
    lines = [json.loads(l) for l in (out_dir / 'log.jsonl').read_text().splitlines()]
    return [l for l in lines if 'loss' in l], [l for l in lines if 'val_loss' in l]


def load_ckpt(out_dir):
    return torch.load(out_dir / 'ckpt.pt', map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
    """A run of 10 iterations with its checkpoint, for the tests that only read one."""
    out = tmp_path_factory.mktemp('trained')
    ok(train(data_dir, out, '--max_iters=10', '--eval_interval=5'))
    return out


def test_loss_falls_and_logs_expert_load(data_dir, tmp_path):
    r = ok(train(data_dir, tmp_path, '--max_iters=60', '--eval_interval=60', '--log_interval=10',
                 '--learning_rate=1e-2', '--warmup_iters=5', '--lr_decay_iters=60'))
    _, evals = read_log(tmp_path)
    assert [e['iter'] for e in evals] == [0, 60]
    # bytes start near ln(256) = 5.55; a few dozen steps learn at least the byte frequencies
    assert evals[0]['val_loss'] > 5.0
    assert evals[1]['val_loss'] < evals[0]['val_loss'] - 1.5, evals
    assert 'saved checkpoint' in r.stdout and load_ckpt(tmp_path)['iter_num'] == 60
    assert 'load max/mean per layer' in r.stdout
    # expert_load.jsonl: each line is the interval's routed pairs, per layer and expert
    loads = [json.loads(l) for l in (tmp_path / 'expert_load.jsonl').read_text().splitlines()]
    assert [l['iter'] for l in loads] == [0, 10, 20, 30, 40, 50]
    pairs_per_iter = 8 * 32 * 2  # batch_size * block_size * top_k
    for l, n_iters in zip(loads, [1, 10, 10, 10, 10, 10]):
        counts = l['tokens_per_expert']
        assert len(counts) == 2 and all(len(c) == 4 for c in counts)
        assert all(sum(c) == n_iters * pairs_per_iter for c in counts), l


def test_resume_continues_exactly(data_dir, tmp_path):
    # dropout and two micro-steps make the dropout RNG and the batch sampler matter
    common = ['--dropout=0.1', '--gradient_accumulation_steps=2', '--eval_interval=6', '--lr_decay_iters=12']
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    ok(train(data_dir, straight, '--max_iters=12', *common))
    ok(train(data_dir, split, '--max_iters=6', *common))
    r = ok(train(data_dir, split, '--max_iters=12', '--init_from=resume', *common))
    assert 'step 6:' in r.stdout
    a, _ = read_log(straight)
    b, _ = read_log(split)
    assert [l['iter'] for l in b] == list(range(12))
    assert [l['loss'] for l in a] == [l['loss'] for l in b]  # bit-exact, the resumed steps included
    ca, cb = load_ckpt(straight), load_ckpt(split)
    assert ca['iter_num'] == cb['iter_num'] == 12
    for k, v in ca['model'].items():
        assert torch.equal(v, cb['model'][k]), k


@pytest.mark.parametrize('log_interval', [1, 100])
def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path, log_interval):
    # with log_interval=100 the NaN at iter 7 is caught by the check before the checkpoint at iter 10
    r = train(data_dir, tmp_path, '--max_iters=20', '--eval_interval=5', '--debug_nan_iter=7',
              f'--log_interval={log_interval}')
    assert r.returncode != 0
    assert 'NaN or inf' in r.stderr and 'last good checkpoint' in r.stderr, r.stderr
    ckpt = load_ckpt(tmp_path)
    assert ckpt['iter_num'] == 5
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values())


def train_patched(patch, data_dir, out_dir, *args):
    """Runs train.py after the lines of patch, which replace a torch function to inject a fault."""
    code = "import runpy, sys, torch\ncalls = [0]\n" + patch + "sys.argv = sys.argv[1:]\nrunpy.run_path('train.py', run_name='__main__')\n"
    return run(sys.executable, '-c', code, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={out_dir}', *args)


def test_nonfinite_weights_under_a_finite_loss_are_never_saved(data_dir, tmp_path):
    # an inf gradient in iter 9 turns the weights NaN (clipping scales every gradient by 1/inf) in a
    # step whose loss was finite; no training loss is checked before the evaluation at iter 10, whose
    # NaN eval loss must stop the run and keep the checkpoint of iter 5
    patch = (
        "real_clip = torch.nn.utils.clip_grad_norm_\n"
        "def clip(params, *a, **k):\n"
        "    params = list(params)\n"
        "    calls[0] += 1\n"
        "    if calls[0] == 10:\n"
        "        params[0].grad.fill_(float('inf'))\n"
        "    return real_clip(params, *a, **k)\n"
        "torch.nn.utils.clip_grad_norm_ = clip\n")
    r = train_patched(patch, data_dir, tmp_path, '--max_iters=10', '--eval_interval=5', '--log_interval=100')
    assert r.returncode != 0
    assert 'step 10: train loss nan' in r.stdout and 'last good checkpoint' in r.stderr, r.stdout + r.stderr
    ckpt = load_ckpt(tmp_path)
    assert ckpt['iter_num'] == 5
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values())


def test_failed_save_keeps_previous_checkpoint(data_dir, tmp_path):
    # torch.save writes half a file, then fails, on its second call (the checkpoint at iter 4)
    patch = (
        "real_save = torch.save\n"
        "def flaky_save(obj, f, *a, **k):\n"
        "    calls[0] += 1\n"
        "    if calls[0] == 2:\n"
        "        open(f, 'wb').write(b'PK half a zip')\n"
        "        raise OSError(28, 'No space left on device')\n"
        "    return real_save(obj, f, *a, **k)\n"
        "torch.save = flaky_save\n")
    r = train_patched(patch, data_dir, tmp_path, '--max_iters=6', '--eval_interval=2')
    assert r.returncode != 0
    assert 'failed to write the checkpoint' in r.stderr and 'No space left' in r.stderr, r.stderr
    assert load_ckpt(tmp_path)['iter_num'] == 2
    assert not (tmp_path / 'ckpt.pt.tmp').exists()


def test_missing_dataset_names_prepare_command(tmp_path):
    r = train(tmp_path / 'empty', tmp_path / 'out', '--max_iters=1')
    assert r.returncode != 0
    assert f'python data/stdlib/prepare.py --out_dir={tmp_path / "empty"}' in r.stderr, r.stderr
    r = run(sys.executable, 'train.py', *TINY, '--dataset=nope', f'--out_dir={tmp_path}')
    assert r.returncode != 0 and "unknown dataset 'nope'" in r.stderr and 'stdlib' in r.stderr, r.stderr


def test_resume_errors_are_clear(data_dir, trained, tmp_path):
    r = train(data_dir, tmp_path / 'none', '--init_from=resume')
    assert r.returncode != 0 and 'no checkpoint at' in r.stderr, r.stderr
    for name, corrupt in [('truncated', lambda b: b[:len(b) // 2]), ('garbage', lambda b: b'not a checkpoint')]:
        out = tmp_path / name
        out.mkdir()
        (out / 'ckpt.pt').write_bytes(corrupt((trained / 'ckpt.pt').read_bytes()))
        r = train(data_dir, out, '--init_from=resume', '--max_iters=20')
        assert r.returncode != 0 and 'corrupt' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_resume_takes_the_architecture_from_the_checkpoint(data_dir, trained, tmp_path):
    # the command line asks for another n_expert and a longer block_size: the checkpoint's win
    # everywhere (the batches, the expert counters), with a note printed before any check
    out = tmp_path / 'run'
    shutil.copytree(trained, out)
    logs = {f: (out / f).read_text() for f in ('log.jsonl', 'expert_load.jsonl')}
    r = ok(train(data_dir, out, '--init_from=resume', '--max_iters=12', '--eval_interval=6',
                 '--block_size=64', '--n_expert=8'))
    assert 'note: block_size=32 from the checkpoint, not 64' in r.stdout, r.stdout
    assert 'note: n_expert=4 from the checkpoint, not 8' in r.stdout, r.stdout
    assert r.stdout.index('note: n_expert') < r.stdout.index('tokens per iteration will be: 256')  # 8 x 32
    loads = [json.loads(l) for l in (out / 'expert_load.jsonl').read_text().splitlines()]
    assert [len(c) for c in loads[-1]['tokens_per_expert']] == [4, 4]
    assert load_ckpt(out)['iter_num'] == 12
    for f in logs:
        assert (out / f).read_text().startswith(logs[f])  # appended to
    # a shorter context fits the model, so the batches take it; an evaluation, of the run or of a
    # fresh model, only prints and leaves the run's logs and checkpoint as they are
    logs = {f: (out / f).read_text() for f in ('log.jsonl', 'expert_load.jsonl')}
    r = ok(train(data_dir, out, '--eval_only=True', '--init_from=resume', '--block_size=16'))
    assert "note: the model's block_size is 32 (the checkpoint's); batches use 16" in r.stdout, r.stdout
    assert 'tokens per iteration will be: 128' in r.stdout and 'step 12: train loss' in r.stdout  # 8 x 16
    r = ok(train(data_dir, out, '--eval_only=True'))  # a fresh model
    assert 'step 0: train loss' in r.stdout
    for f in logs:
        assert (out / f).read_text() == logs[f], f
    assert load_ckpt(out)['iter_num'] == 12


@pytest.mark.parametrize('flag', ['--log_interval=0', '--eval_interval=0', '--eval_iters=0', '--batch_size=0',
                                  '--gradient_accumulation_steps=0', '--block_size=-1', '--max_iters=-1',
                                  '--token_rounding=True --rounding_tile=257'])
def test_settings_that_must_be_positive(data_dir, tmp_path, flag):
    # and token rounding needs a tile of tokens in a micro-batch (TINY: 8 x 32 = 256)
    r = train(data_dir, tmp_path, *flag.split())
    key = flag.split()[-1][2:].split('=')[0]
    assert r.returncode != 0 and f'{key}=' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path / 'ckpt.pt').exists()


@pytest.mark.parametrize('backend', ['sonic', 'grouped_mm'])
def test_gpu_backends_off_the_gpu_stop_clearly(data_dir, tmp_path, monkeypatch, backend):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)  # the tests' interpreter would let sonic run
    r = train(data_dir, tmp_path, f'--moe_backend={backend}')
    assert r.returncode != 0 and 'needs a CUDA GPU' in r.stderr and '--moe_backend=torch' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr


def test_small_batches_are_fine_where_rounding_does_not_act(data_dir, trained, tmp_path):
    # rounding acts only in training MoE layers: an evaluation, or a model with no MoE layer, may
    # have fewer tokens than a tile
    ok(train(data_dir, trained, '--eval_only=True', '--init_from=resume', '--token_rounding=True',
             '--rounding_tile=1024'))
    ok(train(data_dir, tmp_path, '--max_iters=2', '--n_dense_layers=2', '--token_rounding=True',
             '--rounding_tile=1024'))


def test_wandb_gets_the_full_numbers(data_dir, tmp_path, monkeypatch):
    # wandb stays optional (not in requirements.txt): a stand-in module records what train.py sends
    stub = tmp_path / 'stub'
    stub.mkdir()
    (stub / 'wandb.py').write_text(
        "import json, os\n"
        "def _write(kind, d):\n"
        "    with open(os.environ['WANDB_STUB_OUT'], 'a') as f:\n"
        "        f.write(json.dumps({'kind': kind, **d}) + '\\n')\n"
        "def init(project, name, config):\n"
        "    _write('init', {'project': project, 'name': name, 'config': config})\n"
        "def log(d):\n"
        "    _write('log', d)\n")
    out_file = tmp_path / 'wandb.jsonl'
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(stub), os.environ.get('PYTHONPATH')])))
    monkeypatch.setenv('WANDB_STUB_OUT', str(out_file))
    ok(train(data_dir, tmp_path / 'run', '--max_iters=4', '--eval_interval=4', '--log_interval=2',
             '--wandb_log=True', '--wandb_run_name=t', '--token_rounding=True', '--rounding_tile=16'))
    recs = [json.loads(l) for l in out_file.read_text().splitlines()]
    assert recs[0]['kind'] == 'init' and recs[0]['name'] == 't' and recs[0]['config']['n_expert'] == 4
    evals = [r for r in recs if 'val/loss' in r]
    assert [r['iter'] for r in evals] == [0, 4]
    logs = [r for r in recs if 'train/step_loss' in r]  # eval's train/loss and val/loss are apart
    assert [r['iter'] for r in logs] == [0, 2]
    jsonl = read_log(tmp_path / 'run')[0]
    loads = [json.loads(l) for l in (tmp_path / 'run' / 'expert_load.jsonl').read_text().splitlines()]
    for r, j, ld in zip(logs, jsonl, loads):
        assert r['train/step_loss'] == j['loss'] and r['rounding/dropped'] == j['rounding_dropped']
        assert r['rounding/padded'] == j['rounding_padded']
        for l, counts in enumerate(ld['tokens_per_expert']):  # 2 MoE layers of 4 experts
            assert [r[f'load_layer{l}/expert{e}'] for e in range(4)] == counts
            assert r[f'load_layer{l}/max_over_mean'] == pytest.approx(max(counts) / (sum(counts) / 4))


def test_sample_prints_text(trained):
    r = ok(run(sys.executable, 'sample.py', f'--out_dir={trained}', '--num_samples=2', '--max_new_tokens=40',
               '--start=def ', '--device=cpu'))
    body = r.stdout.split("Overriding: device = 'cpu'\n", 1)[1]  # the samples follow the overrides
    samples = body.split('---------------\n')
    assert len(samples) == 3 and samples[2] == ''
    for s in samples[:2]:
        assert 'def ' in s and len(s) >= 40  # the prompt and 40 bytes after it


def test_sample_errors_are_clear(trained, tmp_path, monkeypatch):
    r = run(sys.executable, 'sample.py', f'--out_dir={tmp_path}')
    assert r.returncode != 0 and 'no checkpoint at' in r.stderr, r.stderr
    (tmp_path / 'ckpt.pt').write_bytes(b'garbage')
    r = run(sys.executable, 'sample.py', f'--out_dir={tmp_path}')
    assert r.returncode != 0 and 'corrupt' in r.stderr and 'weights_only=False' not in r.stderr, r.stderr
    (tmp_path / 'latin1.txt').write_bytes(b'\xff\xfe\x00bad')
    for flag, says in [('--start=FILE:no_such_prompt.txt', 'cannot read the prompt file'),
                       (f"--start=FILE:{tmp_path / 'latin1.txt'}", 'cannot read the prompt file as UTF-8'),
                       ('--moe_backend=sonik', 'config error'), ('--temperature=0', 'temperature=0'),
                       ('--top_k=0', 'top_k=0')]:
        r = run(sys.executable, 'sample.py', f'--out_dir={trained}', '--device=cpu', flag)
        assert r.returncode != 0 and says in r.stderr and 'Traceback' not in r.stderr, (flag, r.stderr)
    # a GPT-2 BPE model, offline and with no cached vocabulary: a message, not a network traceback
    data = tmp_path / 'bpe'
    data.mkdir()
    with open(data / 'meta.pkl', 'wb') as f:
        pickle.dump({'vocab_size': 64, 'encoding': 'gpt2'}, f)
    ckpt = load_ckpt(trained)
    ckpt['config']['data_dir'] = str(data)
    out = tmp_path / 'bpe_run'
    out.mkdir()
    torch.save(ckpt, out / 'ckpt.pt')
    monkeypatch.setenv('TIKTOKEN_CACHE_DIR', str(tmp_path / 'no_cache'))
    for var in ('HTTPS_PROXY', 'https_proxy'):  # nothing listens there: offline, even with a network
        monkeypatch.setenv(var, 'http://127.0.0.1:1')
    for var in ('NO_PROXY', 'no_proxy'):
        monkeypatch.delenv(var, raising=False)
    r = run(sys.executable, 'sample.py', f'--out_dir={out}', '--device=cpu', '--max_new_tokens=2')
    assert r.returncode != 0 and 'gpt2 encoding could not be loaded' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_every_model_field_is_a_train_setting():
    """Every GPTConfig field must be a train.py global, or it could not be set from a config."""
    tree = ast.parse((REPO / 'train.py').read_text())
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    missing = {f.name for f in fields(GPTConfig)} - names - {'vocab_size'}  # vocab_size comes from meta.pkl
    assert not missing, f"add these to train.py's config globals: {sorted(missing)}"


def test_ddp_two_processes_on_gloo(data_dir, tmp_path):
    r = ok(torchrun(*TORCHRUN, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
                    '--max_iters=6', '--eval_interval=3', '--gradient_accumulation_steps=4'))
    assert 'tokens per iteration will be: 1,024' in r.stdout  # 2 ranks x 2 micro-steps x 8 x 32
    ckpt = load_ckpt(tmp_path)
    assert ckpt['iter_num'] == 6
    assert len(ckpt['rng']) == 2  # each rank's sampler, so that a resume continues both
    assert ckpt['rng'][0]['sampler'] != ckpt['rng'][1]['sampler']
    # the expert load is summed over both ranks: 2 ranks x 2 micro-steps x 8 x 32 x top_k per iteration
    loads = [json.loads(l) for l in (tmp_path / 'expert_load.jsonl').read_text().splitlines()]
    assert all(sum(c) == 2 * 2 * 8 * 32 * 2 for c in loads[1]['tokens_per_expert'])
    r = run(*TORCHRUN, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
            '--gradient_accumulation_steps=3')
    assert r.returncode != 0 and 'divisible by the 2 DDP ranks' in r.stderr, r.stderr
