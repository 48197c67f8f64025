"""train.py and sample.py end to end, on the CPU: learning, exact resume, safe checkpoints, the NaN
stop, clear errors, and DDP on gloo."""
import ast
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import fields

import pytest
import torch

from conftest import REPO, SONIC, TINY, TORCHRUN, run, torchrun, train, ok, triton_interpreter

sys.path.insert(0, str(REPO))
from model import GPTConfig  # noqa: E402


def read_log(out_dir):
    lines = [json.loads(l) for l in (out_dir / 'log.jsonl').read_text().splitlines()]
    return [l for l in lines if 'loss' in l], [l for l in lines if 'val_loss' in l]


def load_ckpt(out_dir):
    return torch.load(out_dir / 'ckpt.pt', map_location='cpu', weights_only=True)


def assert_same_run(a_dir, b_dir, iters):
    """Two runs took the same iters steps: the same logged losses and final weights, bit for bit."""
    a, b = read_log(a_dir)[0], read_log(b_dir)[0]
    assert [l['loss'] for l in a] == [l['loss'] for l in b] and len(a) == iters
    ca, cb = load_ckpt(a_dir), load_ckpt(b_dir)
    for k, v in ca['model'].items():
        assert torch.equal(v, cb['model'][k]), k


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
    # the log line's elapsed time and ETA: the mean time per iteration so far times the iterations left
    logs, _ = read_log(tmp_path)
    assert 'elapsed ' in r.stdout and ', eta ' in r.stdout
    for a, b in zip(logs, logs[1:]):
        assert a['elapsed_s'] <= b['elapsed_s']
    trained_s = sum(l['ms_per_iter'] / 1000 * n for l, n in zip(logs, [1, 10, 10, 10, 10, 10]))
    assert logs[-1]['eta_s'] == pytest.approx(trained_s / 51 * 9, rel=1e-6)  # iter 50: 51 done, 9 left
    assert logs[-1]['elapsed_s'] >= trained_s
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
    # the resume does not log its first iteration's evaluation twice
    assert [e['iter'] for e in read_log(split)[1]] == [0, 6, 12]
    loads = [json.loads(l)['iter'] for l in (split / 'expert_load.jsonl').read_text().splitlines()]
    assert loads == list(range(12))
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


def start(*args):
    """Starts a command from the repo root, as run() does, without waiting: stdout and stderr in one pipe."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    return subprocess.Popen([str(a) for a in args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def read_until(p, text, out, timeout=240):
    """Reads p's output into the list out until a line holds text (a watchdog kills a silent p)."""
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    try:
        for line in p.stdout:
            out.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never came; the output:\n{''.join(out)[-3000:]}")
    finally:
        watchdog.cancel()


def finish(p, out):
    rest, _ = p.communicate(timeout=240)
    return ''.join(out) + rest


def signalled(data_dir, out_dir, until, sig, *args):
    """train.py on TINY, sent sig once a line of its output holds until; returns (the process, its output)."""
    out = []
    p = start(sys.executable, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={out_dir}', *args)
    read_until(p, until, out)
    p.send_signal(sig)
    return p, finish(p, out)


def record_iters(out_dir):
    """The iterations of log.jsonl's training and eval records and of expert_load.jsonl's."""
    logs, evals = read_log(out_dir)
    loads = [json.loads(l)['iter'] for l in (out_dir / 'expert_load.jsonl').read_text().splitlines()]
    return [l['iter'] for l in logs], [e['iter'] for e in evals], loads


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_with_a_checkpoint_and_the_resume_command(data_dir, tmp_path, sig):
    # the run stops at the end of its iteration, saves it, and prints the command that resumes;
    # that command continues exactly where an uninterrupted run would be, and logs nothing twice
    run_dir = tmp_path / 'run'
    p, text = signalled(data_dir, run_dir, 'iter 3:', sig, '--max_iters=100000', '--eval_interval=1000')
    assert p.returncode == 128 + sig, text
    n = max(int(i) for i in re.findall(r'^iter (\d+):', text, re.M)) + 1  # the iterations done
    last = text.strip().splitlines()[-1]
    assert last.startswith(f'stopped by {sig.name} at iter {n}: saved {run_dir / "ckpt.pt"}'), text
    assert 'Traceback' not in text and load_ckpt(run_dir)['iter_num'] == n
    cmd = shlex.split(last.split('resume with: ')[1])
    assert cmd[:2] == ['python', 'train.py'] and cmd[-1] == '--init_from=resume', cmd
    ok(run(sys.executable, *cmd[1:], f'--max_iters={n + 3}'))  # a later --max_iters wins
    assert load_ckpt(run_dir)['iter_num'] == n + 3
    assert record_iters(run_dir) == (list(range(n + 3)), [0, n + 3], list(range(n + 3)))
    straight = tmp_path / 'straight'
    ok(train(data_dir, straight, f'--max_iters={n + 3}', '--eval_interval=1000'))
    assert [l['loss'] for l in read_log(straight)[0]] == [l['loss'] for l in read_log(run_dir)[0]]


def test_without_always_save_checkpoint_ckpt_pt_keeps_the_best_model(data_dir, tmp_path):
    # always_save_checkpoint=False: ckpt.pt holds the best evaluated model. A later state that is not the
    # best (the end of a resume that a learning rate far too high ruins) goes to ckpt_last.pt, from which a
    # resume continues; the next ckpt.pt written removes it
    ok(train(data_dir, tmp_path, '--max_iters=8', '--eval_interval=4', '--always_save_checkpoint=False'))
    best = load_ckpt(tmp_path)
    assert best['iter_num'] == 8 and not (tmp_path / 'ckpt_last.pt').exists()
    r = ok(train(data_dir, tmp_path, '--max_iters=12', '--init_from=resume', '--learning_rate=0.5', '--decay_lr=False'))
    evals = read_log(tmp_path)[1]
    assert evals[-1]['iter'] == 12 and evals[-1]['val_loss'] > best['best_val_loss'] + 1, evals
    assert r.stdout.strip().endswith(f"checkpoint: {tmp_path / 'ckpt_last.pt'}"), r.stdout
    kept = load_ckpt(tmp_path)
    assert kept['iter_num'] == 8 and all(torch.equal(v, best['model'][k]) for k, v in kept['model'].items())
    last = torch.load(tmp_path / 'ckpt_last.pt', map_location='cpu', weights_only=True)
    assert last['iter_num'] == 12 and last['best_val_loss'] == best['best_val_loss']
    # the resume starts at iter 12, not at the best's 8; saving every evaluation again, it writes ckpt.pt
    r = ok(train(data_dir, tmp_path, '--max_iters=14', '--init_from=resume', '--always_save_checkpoint=True'))
    assert 'step 12:' in r.stdout and 'step 8:' not in r.stdout, r.stdout
    assert load_ckpt(tmp_path)['iter_num'] == 14 and not (tmp_path / 'ckpt_last.pt').exists()
    assert record_iters(tmp_path)[:2] == (list(range(14)), [0, 4, 8, 12, 14])


def test_a_stop_before_a_best_saves_ckpt_last(data_dir, tmp_path):
    # always_save_checkpoint=False and no evaluation yet: the stop's state goes to ckpt_last.pt, which
    # sample.py reads where there is no ckpt.pt, and which a run from scratch will not overwrite
    _, text = signalled(data_dir, tmp_path, 'iter 3:', signal.SIGTERM, '--max_iters=100000', '--eval_interval=1000',
                        '--always_save_checkpoint=False')
    n = max(int(i) for i in re.findall(r'^iter (\d+):', text, re.M)) + 1
    last = text.strip().splitlines()[-1]
    assert last.startswith(f'stopped by SIGTERM at iter {n}: saved {tmp_path / "ckpt_last.pt"}'), text
    assert not (tmp_path / 'ckpt.pt').exists()
    ok(run(sys.executable, 'sample.py', f'--out_dir={tmp_path}', '--device=cpu', '--max_new_tokens=4'))
    r = train(data_dir, tmp_path, '--max_iters=4')
    assert r.returncode != 0 and f"already holds a run ({tmp_path / 'ckpt_last.pt'})" in r.stderr, r.stderr


def test_a_second_ctrl_c_quits_at_once(data_dir, tmp_path):
    # iterations of about half a second: the second Ctrl-C comes long before the first's save
    out = []
    p = start(sys.executable, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
              '--max_iters=100000', '--eval_interval=1000', '--batch_size=64', '--block_size=256', '--eval_iters=1')
    read_until(p, 'iter 1:', out)
    p.send_signal(signal.SIGINT)
    read_until(p, 'press Ctrl-C again to quit at once', out)
    p.send_signal(signal.SIGINT)
    text = finish(p, out)
    assert p.returncode == -signal.SIGINT, text  # killed by the signal itself
    assert 'Traceback' not in text and 'stopped by' not in text
    assert not (tmp_path / 'ckpt.pt').exists()


def test_a_run_from_scratch_never_overwrites_a_run(data_dir, trained, tmp_path, monkeypatch):
    out = tmp_path / 'run'
    shutil.copytree(trained, out)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    r = train(data_dir, out, '--max_iters=4')
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    for says in ('already holds a run', '--init_from=resume', 'another --out_dir', '--overwrite=True'):
        assert says in r.stderr, r.stderr
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    # --overwrite=True that fails before its first record (here wandb, which will not import) leaves the
    # old run whole, its logs too
    stub = tmp_path / 'stub'
    stub.mkdir()
    (stub / 'wandb.py').write_text("raise ImportError('no wandb here')\n")
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(stub), os.environ.get('PYTHONPATH')])))
    r = train(data_dir, out, '--max_iters=4', '--overwrite=True', '--wandb_log=True')
    assert r.returncode != 0 and 'wandb is not installed' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    ok(train(data_dir, out, '--max_iters=4', '--eval_interval=4', '--overwrite=True'))
    assert load_ckpt(out)['iter_num'] == 4 and read_log(out)[1][0]['iter'] == 0


def test_resume_takes_the_training_settings_from_the_checkpoint(data_dir, tmp_path):
    # the run's config file is not on the resume's command line: its settings still hold
    cfg = tmp_path / 'slow.py'
    cfg.write_text("learning_rate = 2e-4\ndecay_lr = False\nweight_decay = 0.05\nbeta2 = 0.99\n"
                   "grad_clip = 0.5\neval_interval = 3\n")
    out = tmp_path / 'run'
    ok(train(data_dir, out, cfg, '--max_iters=3'))
    r = ok(train(data_dir, out, '--init_from=resume', '--max_iters=6'))
    assert 'note:' not in r.stdout.replace("note: max_iters=6 from this launch's arguments (the checkpoint had 3)", '')
    logs, evals = read_log(out)
    assert [l['lr'] for l in logs] == [2e-4] * 6 and [e['iter'] for e in evals] == [0, 3, 6]
    saved = load_ckpt(out)['config']
    assert (saved['weight_decay'], saved['beta2'], saved['grad_clip'], saved['max_iters']) == (0.05, 0.99, 0.5, 6)
    # a setting given on the resume's command line wins, and says so
    r = ok(train(data_dir, out, '--init_from=resume', '--max_iters=8', '--learning_rate=1e-4'))
    assert "note: learning_rate=0.0001 from this launch's arguments (the checkpoint had 0.0002)" in r.stdout, r.stdout
    assert [l['lr'] for l in read_log(out)[0]][6:] == [1e-4] * 2


def test_unwritable_out_dir_and_bad_devices_say_what_to_do(data_dir, tmp_path):
    # an out_dir that cannot be made (under a regular file): stopped even as root, where chmod is no test
    (tmp_path / 'file').write_text('x')
    r = train(data_dir, tmp_path / 'file' / 'run', '--max_iters=2')
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert f"cannot write to out_dir {tmp_path / 'file' / 'run'}: Not a directory; choose another --out_dir" in r.stderr
    r = train(data_dir, tmp_path / 'a', '--moe_backend=foo')  # named as such, before any GPU check
    assert r.returncode != 0 and "moe_backend='foo'" in r.stderr and "'torch'" in r.stderr, r.stderr
    assert 'GPU' not in r.stderr and 'Traceback' not in r.stderr
    if not torch.cuda.is_available():
        for script, args in (('train.py', [*TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path / "b"}']),
                             ('sample.py', ['--out_dir=nowhere'])):
            r = run(sys.executable, script, *args, '--device=cuda')
            assert r.returncode != 0 and 'this torch has no CUDA' in r.stderr, r.stderr
            assert 'Traceback' not in r.stderr
    if not torch.backends.mps.is_available():  # a device torch names but cannot use here: one line, no traceback
        for script, args in (('train.py', [*TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path / "c"}']),
                             ('sample.py', ['--out_dir=nowhere']), ('bench.py', ['--tiny'])):
            r = run(sys.executable, script, *args, '--device=mps')
            assert r.returncode != 0 and "device='mps'" in r.stderr and "use 'cpu'" in r.stderr, r.stderr
            assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_torchrun_rank_asks_its_own_gpu_before_nccl(data_dir, tmp_path):
    # under torchrun each rank checks the GPU it will use, cuda:LOCAL_RANK, and a T4 stops there with one line before
    # NCCL starts. Faked on the CPU: rank 1's GPU is a T4 (7.5) beside an sm_90 GPU 0, which a check of the default
    # GPU would have passed
    patch = ("import os, torch.distributed as dist\n"
             "os.environ.update(RANK='1', LOCAL_RANK='1', WORLD_SIZE='2')\n"
             "torch.version.hip = None\n"
             "torch.cuda.is_available = lambda: True\n"
             "torch.cuda.device_count = lambda: 2\n"
             "one = lambda d: torch.device(d if d is not None else 'cuda').index == 1\n"
             "torch.cuda.get_device_capability = lambda d=None: (7, 5) if one(d) else (9, 0)\n"
             "torch.cuda.get_device_name = lambda d=None: 'Tesla T4' if one(d) else 'NVIDIA H100'\n"
             "def late(*a, **k): raise SystemExit('NCCL set up before the capability check')\n"
             "dist.init_process_group = torch.cuda.set_device = late\n")
    r = train_patched(patch, data_dir, tmp_path, '--device=cuda', '--moe_backend=sonic', '--gradient_accumulation_steps=2')
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert "moe_backend='sonic' needs an NVIDIA GPU of compute capability 8.0" in r.stderr, r.stderr
    assert "Tesla T4 is 7.5: use moe_backend='torch'" in r.stderr and 'NCCL' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_block_too_big_for_the_device_stops_before_training(data_dir, tmp_path):
    # dropout makes the CPU's SDPA keep its T x T matrices: 1000 x 2 heads x 20000^2, terabytes
    r = train(data_dir, tmp_path, '--block_size=20000', '--batch_size=1000', '--dropout=0.1')
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert 'batch_size=1000 x block_size=20000 cannot train on this cpu' in r.stderr, r.stderr
    assert 'step 0' not in r.stdout and not (tmp_path / 'log.jsonl').exists()


def test_a_cpu_run_far_too_slow_is_warned(data_dir, tmp_path):
    # 8 x 16384 tokens of long attention: a minute or so an iteration on one thread. Stopped with
    # Ctrl-C as soon as warned, which also shows a stop before the first iteration saves nothing
    p, text = signalled(data_dir, tmp_path, 'warning: an iteration', signal.SIGINT, '--block_size=16384',
                        '--max_iters=1', '--eval_iters=1')
    line = next(l for l in text.splitlines() if l.startswith('warning: an iteration'))
    assert '131,072 tokens per process' in line and 'CPU threads' in line and 'train on a GPU' in line, line
    assert p.returncode == 128 + signal.SIGINT and 'Traceback' not in text, text


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


FORCE_OPTIMIZER = {  # CUDA's optimizers, forced here on the CPU (TritonAdamW's kernel in the interpreter)
    'fused': ("real_adamw = torch.optim.AdamW\n"
              "class FusedAdamW(real_adamw):\n"
              "    def __init__(self, *a, **k):\n"
              "        super().__init__(*a, **k, fused=True)\n"
              "torch.optim.AdamW = FusedAdamW\n"),
    'triton': ("import model\n"
               "real_configure = model.GPT.configure_optimizers\n"
               "model.GPT.configure_optimizers = lambda self, *a, **k: model.TritonAdamW(real_configure(self, *a, **k).param_groups)\n"),
    'triton_bf16': ("import model\n"  # --adamw_states=bfloat16, as configure_optimizers takes it on CUDA
                    "real_configure = model.GPT.configure_optimizers\n"
                    "def configure(self, *a, state_dtype, **k):\n"
                    "    return model.TritonAdamW(real_configure(self, *a, **k).param_groups, state_dtype=state_dtype)\n"
                    "model.GPT.configure_optimizers = configure\n"),
}


def test_bf16_adamw_states_resume_exactly(data_dir, tmp_path):
    # TritonAdamW with bf16 moments (--adamw_states=bfloat16): the checkpoint holds them in bf16, and
    # a run resumed from it takes the same steps as one that never stopped
    patch = FORCE_OPTIMIZER['triton_bf16']
    common = ['--adamw_states=bfloat16', '--eval_interval=3', '--lr_decay_iters=6', '--learning_rate=1e-2']
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    with triton_interpreter():   # TritonAdamW on TINY's CPU tensors
        ok(train_patched(patch, data_dir, straight, '--max_iters=6', *common))
        ok(train_patched(patch, data_dir, split, '--max_iters=3', *common))
        states = load_ckpt(split)['optimizer']['state'].values()
        assert states and all(s[k].dtype == torch.bfloat16 for s in states for k in ('exp_avg', 'exp_avg_sq'))
        ok(train_patched(patch, data_dir, split, '--max_iters=6', '--init_from=resume', *common))
    assert_same_run(straight, split, 6)


def test_expert_copies_change_nothing_but_the_cast(data_dir, tmp_path):
    # --expert_copies (on by default): TritonAdamW writes 16-bit copies of the expert weights and the
    # sonic forward reads them instead of casting. The same steps bit for bit as with the cast, across
    # a resume too (the copies are made after the checkpoint's weights are loaded); fp16 autocast,
    # since the interpreter truncates to bf16
    patch = (FORCE_OPTIMIZER['triton'] +
             "real_keep = model.GPT.keep_expert_copies\n"
             "def keep(self, optimizer, dtype):\n"
             "    kept = real_keep(self, optimizer, dtype)\n"
             "    if kept:\n"
             "        print('expert copies in', dtype)\n"
             "    return kept\n"
             "model.GPT.keep_expert_copies = keep\n")
    common = [*SONIC, '--dtype=float16', '--eval_interval=2', '--lr_decay_iters=4',
              '--learning_rate=1e-2', '--eval_iters=1']
    kept, cast = tmp_path / 'kept', tmp_path / 'cast'
    r = ok(train_patched(patch, data_dir, kept, '--max_iters=4', *common))
    assert 'expert copies in torch.float16' in r.stdout
    r = ok(train_patched(patch, data_dir, cast, '--max_iters=2', '--expert_copies=False', *common))
    assert 'expert copies' not in r.stdout
    r = ok(train_patched(patch, data_dir, cast, '--max_iters=4', '--init_from=resume', *common))
    assert 'expert copies in torch.float16' in r.stdout
    assert_same_run(kept, cast, 4)


@pytest.mark.parametrize("kind", ["fused", "triton"])
def test_fused_adamw_clips_inside_its_step(data_dir, tmp_path, kind):
    # with a fused AdamW or TritonAdamW (what CUDA runs) train.py clips inside the optimizer step,
    # never calling clip_grad_norm_; the weights match the CPU's AdamW after clip_grad_norm_
    patch = (FORCE_OPTIMIZER[kind] +
             "def clip(*a, **k):\n"
             "    raise AssertionError('clip_grad_norm_ called')\n"
             "torch.nn.utils.clip_grad_norm_ = clip\n")
    args = ['--max_iters=6', '--eval_interval=6', '--grad_clip=0.05', '--learning_rate=1e-2']
    with triton_interpreter():   # TritonAdamW on TINY's CPU tensors
        ok(train_patched(patch, data_dir, tmp_path / kind, *args))
    ok(train(data_dir, tmp_path / 'plain', *args))
    forced, plain = load_ckpt(tmp_path / kind), load_ckpt(tmp_path / 'plain')
    assert all(bool(v['fused']) == (kind == 'fused') for v in forced['optimizer']['param_groups'])
    assert not any(v.get('fused') for v in plain['optimizer']['param_groups'])
    for k, v in plain['model'].items():  # rounding differs at 3e-7; a wrong coefficient gives 1e-3
        assert (forced['model'][k] - v).norm() <= 1e-5 * v.norm(), k


def test_kernel_grad_norm_clips_as_reading_the_gradients(data_dir, tmp_path):
    # sonic and TritonAdamW in one process (the interpreter, or the GPU where there is one): the clip's norm takes the expert weight
    # gradients' sums of squares from the kernels (every one of them), and trains as the norm read from
    # the gradients; with gradient accumulation the gradients are sums, so none is taken. The clip is
    # active (grad_clip far under the norm). fp32: the interpreter keeps bf16 as raw uint16, and its bf16
    # arithmetic is garbage; fp16 turns the GradScaler on, which clips outside AdamW (tests/test_sonic.py
    # covers autocast's fp32 masters)
    common = [*SONIC, '--dtype=float32', '--max_iters=4', '--eval_interval=4', '--lr_decay_iters=4',
              '--eval_iters=1', '--grad_clip=0.05', '--learning_rate=1e-2']
    runs = {flag: tmp_path / flag for flag in ('True', 'False')}
    for flag, out in runs.items():
        r = ok(train_patched(FORCE_OPTIMIZER['triton'], data_dir, out, *common, f'--kernel_grad_norm={flag}'))
        assert ("gradient norm: 4 of the 4 expert weight gradients" in r.stdout) == (flag == 'True'), r.stdout
    ca, cb = load_ckpt(runs['True']), load_ckpt(runs['False'])
    for k, v in cb['model'].items():  # the norms' sums differ in order only
        assert (ca['model'][k] - v).norm() <= 1e-5 * v.norm(), k
    r = ok(train_patched(FORCE_OPTIMIZER['triton'], data_dir, tmp_path / 'accum', *common,
                         '--gradient_accumulation_steps=2'))
    assert "gradient norm: 0 of the 4" in r.stdout


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
    last = r.stderr.strip().splitlines()[-1]
    assert 'failed to write the checkpoint of iter 4 (no space left on device)' in last, r.stderr
    assert 'still holds iter 2' in last and '--init_from=resume' in last and 'Traceback' not in r.stderr
    assert load_ckpt(tmp_path)['iter_num'] == 2
    assert not (tmp_path / 'ckpt.pt.tmp').exists()


def test_missing_dataset_names_prepare_command(tmp_path):
    r = train(tmp_path / 'empty', tmp_path / 'out', '--max_iters=1')
    assert r.returncode != 0
    assert f'python data/stdlib/prepare.py --out_dir={tmp_path / "empty"}' in r.stderr, r.stderr
    r = run(sys.executable, 'train.py', *TINY, '--dataset=nope', f"--out_dir={tmp_path / 'new'}")
    assert r.returncode != 0 and "unknown dataset 'nope'" in r.stderr and 'stdlib' in r.stderr, r.stderr
    assert not (tmp_path / 'new').exists()  # the out_dir it made, empty, is taken away again


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
    for f in logs:  # appended to, after the records of iter 10 (its eval) that the resume writes again
        kept = ''.join(l for l in logs[f].splitlines(keepends=True) if json.loads(l)['iter'] < 10)
        assert (out / f).read_text().startswith(kept)
    # a shorter context fits the model, so the batches take it; an evaluation, of the run or of a
    # fresh model, only prints and leaves the run's logs and checkpoint as they are
    logs = {f: (out / f).read_text() for f in ('log.jsonl', 'expert_load.jsonl')}
    r = ok(train(data_dir, out, '--eval_only=True', '--init_from=resume', '--block_size=16'))
    assert "note: the model's block_size is 32 (the checkpoint's); batches use 16" in r.stdout, r.stdout
    assert 'tokens per iteration will be: 128' in r.stdout and 'step 12: train loss' in r.stdout  # 8 x 16
    r = ok(train(data_dir, out, '--eval_only=True'))  # a fresh model, and a note that the run is there
    assert 'step 0: train loss' in r.stdout
    assert 'note: eval_only=True evaluates a fresh model; add --init_from=resume' in r.stdout, r.stdout
    for f in logs:
        assert (out / f).read_text() == logs[f], f
    assert load_ckpt(out)['iter_num'] == 12


@pytest.mark.parametrize('flag', ['--log_interval=0', '--eval_interval=0', '--eval_iters=0', '--batch_size=0',
                                  '--gradient_accumulation_steps=0', '--block_size=-1', '--max_iters=-1',
                                  '--token_rounding=True --rounding_tile=257', '--compile_mode=fast',
                                  '--adamw_states=float16', '--adamw_states=bfloat16', '--n_head=0', '--dropout=1.5',
                                  '--learning_rate=-1', '--beta2=2', '--device=nodevice'])
def test_bad_settings_stop_with_one_line(data_dir, tmp_path, flag):
    # counts that must be positive; token rounding needs a tile of tokens in a micro-batch (TINY: 8 x 32
    # = 256); compile_mode and adamw_states take named values, and bf16 AdamW moments need TritonAdamW,
    # which the CPU does not get
    r = train(data_dir, tmp_path, *flag.split())
    key = flag.split()[-1][2:].split('=')[0]
    assert r.returncode != 0 and f'{key}=' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path / 'ckpt.pt').exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA graphs need a CUDA GPU')
def test_cuda_graphs_train_as_the_compiled_step(data_dir, tmp_path):
    """compile_mode='reduce-overhead' replays the compiled forward and backward as CUDA graphs. With
    gradient accumulation (gradients added across replays that reuse their outputs' memory) and
    evaluations between the steps, it trains as the default mode: the same kernels, so losses agree
    to inductor's own differences between modes"""
    common = ['--device=cuda', '--moe_backend=sonic', '--compile=True', '--max_iters=8', '--eval_interval=4',
              '--gradient_accumulation_steps=2', '--log_interval=1']
    logs = {}
    for mode in ('default', 'reduce-overhead'):
        ok(train(data_dir, tmp_path / mode, *common, f'--compile_mode={mode}', timeout=600))
        logs[mode] = read_log(tmp_path / mode)
    (tr_a, ev_a), (tr_b, ev_b) = logs.values()
    assert [r['iter'] for r in tr_a] == [r['iter'] for r in tr_b] and len(ev_a) == len(ev_b) == 3
    for a, b in zip(tr_a + ev_a, tr_b + ev_b):
        for k in ('loss', 'val_loss'):
            if k in a:
                assert abs(a[k] - b[k]) < 2e-2 * abs(a[k]), (a, b)


def test_deterministic_changes_nothing_on_the_cpu(data_dir, trained, tmp_path):
    # the CPU's step repeats already; the switch (torch's deterministic algorithms) keeps it as it was
    ok(train(data_dir, tmp_path, '--max_iters=10', '--eval_interval=5', '--deterministic=True'))
    assert_same_run(trained, tmp_path, 10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='the switch makes a GPU step repeat; a CPU step does already')
@pytest.mark.parametrize('backend', ['sonic', 'grouped_mm', 'torch'])
def test_deterministic_gpu_runs_repeat_bit_for_bit(data_dir, tmp_path, backend):
    # without the switch two runs of one seed part: attention's backward and the embedding's gradient
    # add with atomics. With it: the same losses and weights, compiled, in bf16, on each expert backend
    common = ['--device=cuda', f'--moe_backend={backend}', '--compile=True', '--max_iters=6', '--eval_interval=3',
              '--deterministic=True', '--n_embd=128', '--block_size=128', '--expert_size=64']
    for r in 'ab':
        ok(train(data_dir, tmp_path / r, *common, timeout=600))
    assert_same_run(tmp_path / 'a', tmp_path / 'b', 6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='TritonAdamW and bf16 sonic kernels need a CUDA GPU')
@pytest.mark.parametrize('mode', ['default', 'reduce-overhead'])
def test_expert_copies_train_as_the_cast_compiled(data_dir, tmp_path, mode):
    # compiled, bf16, TritonAdamW: the copies (MoE buffers, written in place between replays) train as
    # the forward's cast, in both compile modes. Not bit for bit: a CUDA step is not deterministic
    # without --deterministic (the embedding's backward adds with atomics), and the two differed by
    # 2e-6 at the sixth step;
    # tests/test_sonic.py and tests/test_model.py check the layer and the optimizer bit for bit
    common = ['--device=cuda', '--moe_backend=sonic', '--compile=True', '--max_iters=6', '--eval_interval=3',
              '--log_interval=1', f'--compile_mode={mode}']
    for flag in ('True', 'False'):
        ok(train(data_dir, tmp_path / flag, *common, f'--expert_copies={flag}', timeout=600))
    (tr_a, ev_a), (tr_b, ev_b) = read_log(tmp_path / 'True'), read_log(tmp_path / 'False')
    assert len(tr_a) == len(tr_b) == 6 and len(ev_a) == len(ev_b) == 3
    for a, b in zip(tr_a + ev_a, tr_b + ev_b):
        for k in ('loss', 'val_loss'):
            if k in a:
                assert abs(a[k] - b[k]) < 1e-4 * abs(b[k]), (a, b)
    ca, cb = load_ckpt(tmp_path / 'True'), load_ckpt(tmp_path / 'False')
    for k, v in ca['model'].items():
        assert (cb['model'][k].float() - v.float()).norm() <= 1e-3 * v.float().norm() + 1e-12, k


@pytest.mark.parametrize('backend', ['sonic', 'grouped_mm'])
def test_gpu_backends_off_the_gpu_stop_clearly(data_dir, tmp_path, monkeypatch, backend):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)  # the tests' interpreter would let sonic run
    r = train(data_dir, tmp_path, f'--moe_backend={backend}')
    assert r.returncode != 0 and 'needs a CUDA GPU' in r.stderr and "moe_backend='torch'" in r.stderr, r.stderr
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
                       ('--top_k=-1', 'top_k=-1')]:
        r = run(sys.executable, 'sample.py', f'--out_dir={trained}', '--device=cpu', flag)
        assert r.returncode != 0 and says in r.stderr and 'Traceback' not in r.stderr, (flag, r.stderr)
    # a GPT-2 BPE model, offline and with no cached vocabulary: a message, not a network traceback
    ckpt = load_ckpt(trained)
    ckpt['meta'] = {'vocab_size': ckpt['model_args']['vocab_size'], 'encoding': 'gpt2'}
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


def test_the_checkpoint_keeps_the_vocabulary(data_dir, trained, tmp_path):
    # sample.py decodes with the checkpoint's vocabulary and needs no data; a resume onto data prepared again
    # with another vocabulary stops, where it would index past the embedding
    ckpt = load_ckpt(trained)
    assert ckpt['meta'] == pickle.loads((data_dir / 'meta.pkl').read_bytes())
    ckpt['config']['data_dir'] = str(tmp_path / 'gone')
    (tmp_path / 'moved').mkdir()
    torch.save(ckpt, tmp_path / 'moved' / 'ckpt.pt')
    args = ['--device=cpu', '--max_new_tokens=40', '--start=def ', '--num_samples=1', '--top_k=0']  # 0: no cut
    r = ok(run(sys.executable, 'sample.py', f"--out_dir={tmp_path / 'moved'}", *args))
    with_data = ok(run(sys.executable, 'sample.py', f'--out_dir={trained}', *args))
    sample = r.stdout.split("Overriding: top_k = 0\n", 1)[1]  # the samples follow the overrides
    assert sample == with_data.stdout.split("Overriding: top_k = 0\n", 1)[1] and len(sample) >= 40, sample
    # a checkpoint without one (an older train.py's) reads meta.pkl, and stops if its size is not the model's
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'meta.pkl').write_bytes(pickle.dumps({'vocab_size': 64, 'encoding': 'bytes'}))
    del ckpt['meta']
    ckpt['config']['data_dir'] = str(other)
    torch.save(ckpt, tmp_path / 'moved' / 'ckpt.pt')
    r = run(sys.executable, 'sample.py', f"--out_dir={tmp_path / 'moved'}", '--device=cpu', '--max_new_tokens=2')
    assert r.returncode != 0 and 'has a vocabulary of 64, the model 256' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr
    # the data prepared again: its meta.pkl no longer the run's
    data = tmp_path / 'data'
    shutil.copytree(data_dir, data)
    (data / 'meta.pkl').write_bytes(pickle.dumps({'vocab_size': 256, 'encoding': 'latin-1'}))
    out = tmp_path / 'run'
    shutil.copytree(trained, out)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    r = train(data, out, '--init_from=resume', '--max_iters=12')
    assert r.returncode != 0 and 'another vocabulary than this run trained on' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and {f.name: f.read_bytes() for f in out.iterdir()} == before


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


def test_ddp_ranks_stop_together_when_one_is_signalled(data_dir, tmp_path):
    # SIGTERM reaches rank 1 only: rank 0 learns of it through the all_reduce at the iteration
    # boundary, both stop at the same iteration and write the checkpoint together
    out = []
    p = start(*TORCHRUN, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
              '--max_iters=100000', '--eval_interval=1000', '--gradient_accumulation_steps=2')
    read_until(p, 'iter 3:', out)
    ranks = {}  # torchrun's workers: their rank from their environment
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1]) == p.pid:
                env = dict(kv.split('=', 1) for kv in open(f'/proc/{pid}/environ').read().split('\0') if '=' in kv)
                ranks[env['RANK']] = int(pid)
        except (OSError, IndexError, KeyError):
            pass  # a process that ended meanwhile, or not a worker
    assert set(ranks) == {'0', '1'}, ranks
    os.kill(ranks['1'], signal.SIGTERM)
    text = finish(p, out)
    n = max(int(i) for i in re.findall(r'^iter (\d+):', text, re.M)) + 1
    assert f'stopped by SIGTERM at iter {n}: saved' in text and 'Traceback' not in text, text
    ckpt = load_ckpt(tmp_path)
    assert ckpt['iter_num'] == n and len(ckpt['rng']) == 2
    cmd = shlex.split(text.split('resume with: ')[1].splitlines()[0])
    assert cmd[:4] == ['torchrun', '--standalone', '--nproc_per_node=2', 'train.py'], cmd
    ok(torchrun(*TORCHRUN, *cmd[3:], f'--max_iters={n + 2}'))
    assert load_ckpt(tmp_path)['iter_num'] == n + 2
    assert record_iters(tmp_path) == (list(range(n + 2)), [0, n + 2], list(range(n + 2)))


def test_ctrl_c_to_torchrun_stops_every_rank_with_a_checkpoint(data_dir, tmp_path):
    # a user's Ctrl-C reaches torchrun, which passes a signal on to the ranks: they stop together and save, and
    # rank 0 offers no quick second Ctrl-C (torchrun passes that on as a SIGTERM, which the ranks do not hurry for)
    out = []
    p = start(*TORCHRUN, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={tmp_path}',
              '--max_iters=100000', '--eval_interval=1000', '--gradient_accumulation_steps=2')
    read_until(p, 'iter 2:', out)
    p.send_signal(signal.SIGINT)
    text = finish(p, out)
    assert 'stopping after this iteration to save a checkpoint; torchrun ends the ranks' in text, text
    assert 'press Ctrl-C again' not in text, text
    n = load_ckpt(tmp_path)['iter_num']
    assert re.search(f'stopped by SIG(INT|TERM) at iter {n}: saved', text) and len(load_ckpt(tmp_path)['rng']) == 2, text
