"""Shared helpers for the tests that run train.py, sample.py and the prepare scripts as a user would:
in a subprocess from the repo root, on the CPU, with a tiny model and data made in a temp dir."""
import os
import random
import sys
import subprocess
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

# Without a GPU the sonic Triton kernels run in Triton's CPU interpreter. sonic_kernels reads this
# when first imported, so it is set here, before pytest imports any test module.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Triton's interpreter (triton/runtime/interpreter.py) turns a scalar kernel argument used as a
    # Python int (range(0, D, BLOCK_K) in a kernel) into int(ndarray of shape (1,)), which NumPy >=
    # 1.25 deprecates: tens of thousands of copies per run, none from this repo's code
    config.addinivalue_line(
        "filterwarnings",
        "ignore:Conversion of an array with ndim > 0 to a scalar is deprecated:DeprecationWarning:triton.runtime.interpreter")


# -----------------------------------------------------------------------------
# Seeds and tolerances

def seed_of(nodeid):
    """A test's seed: a stable hash of its id (file relative to the repo, then name and parameters),
    shifted by TEST_SEED_OFFSET. Rerunning a test reruns its numbers; a sweep over offsets
    (TEST_SEED_OFFSET=0..19) checks that a tolerance holds beyond the one seed it was set on."""
    return (zlib.crc32(nodeid.encode()) + int(os.environ.get('TEST_SEED_OFFSET', '0'))) % 2**32


@pytest.fixture(autouse=True)
def seed(request):
    """Seeds torch, numpy and random before every test; returns the seed."""
    path = Path(request.node.path).resolve().relative_to(REPO).as_posix()
    s = seed_of(f"{path}::{request.node.nodeid.split('::', 1)[1]}")  # the same from any working directory
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)
    return s


@pytest.fixture(autouse=True)
def release_gpu_cache():
    """After a test that left more than 2 GiB in torch's CUDA cache, hands it back: pytest-xdist runs
    several test processes on one GPU, and what one keeps cached the others cannot allocate."""
    yield
    if torch.cuda.is_initialized() and torch.cuda.memory_reserved() > 2**31:
        torch.cuda.empty_cache()


def interpreter_problem():
    """Why Triton's CPU interpreter cannot run the kernels here, or None. Triton before 3.7 runs it only
    with numpy<2.4: numpy 2.4 made int() of a one-element array an error, and that interpreter calls it
    on every loop bound (the kernels then fail with 'only 0-dimensional arrays can be converted to
    Python scalars'). No pin in tests/requirements.txt can exclude the pair without fighting a CUDA
    torch's own triton pin."""
    try:
        import triton
    except ImportError:
        return None
    def major_minor(v):
        return tuple(int(x) for x in v.split('.')[:2])
    if major_minor(triton.__version__) < (3, 7) and major_minor(np.__version__) >= (2, 4):
        return (f"triton {triton.__version__}'s CPU interpreter needs numpy<2.4 (numpy {np.__version__} is "
                f"installed): pip install 'numpy<2.4' (or, with a CPU torch, 'triton>=3.7')")
    return None


def pytest_sessionstart(session):
    """Where this run needs the interpreter (no GPU) and it cannot run, the run stops here with what
    to install. On a GPU machine the tests that start interpreted ranks skip instead."""
    if os.environ.get('TRITON_INTERPRET') == '1' and (why := interpreter_problem()):
        pytest.exit(why, returncode=4)


def pytest_report_header(config):
    offset = os.environ.get('TEST_SEED_OFFSET')
    return f"TEST_SEED_OFFSET={offset}: every test's seed is shifted" if offset else None


def rel(a, b):
    """||a - b|| / ||b|| in float64: the error of a against the reference b, relative to b's size."""
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def assert_rel(a, b, tol, name, scale=0.0):
    """||a - b|| < tol * ||b||. Where b sums terms that can cancel, scale is the size of those terms,
    and the error is measured against max(||b||, scale): rounding error follows the terms."""
    assert a.shape == b.shape, f"{name}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert torch.isfinite(a).all(), f"{name}: not finite"
    r = rel(a, b) * min(1.0, b.detach().double().norm().item() / scale) if scale else rel(a, b)
    assert r < tol, f"{name}: relative error {r:.2e} >= {tol:.0e}"


def assert_small(a, scale, tol, name):
    """For a that is zero in exact arithmetic: ||a|| against the size scale it would have otherwise."""
    r = a.detach().double().norm().item() / scale
    assert r < tol, f"{name}: {r:.2e} of its scale >= {tol:.0e}"


def round_pairs_as_round_tokens(idx, gates, probs, tile, mode):
    """moe.round_tokens' five outputs from sonic_kernels.round_pairs, fed as the sonic router feeds it:
    the scores and top-K's choice expert-major, and each expert's count of choices."""
    import sonic_kernels
    chosen = torch.zeros(probs.shape[1], probs.shape[0], dtype=torch.bool, device=idx.device).scatter_(0, idx.t(), True)
    tok, exp, score, sel, _ = sonic_kernels.round_pairs(idx, gates, probs.t().contiguous(), chosen, chosen.sum(1),
                                                        tile, mode)
    return tok, exp, score, sel.t(), chosen.t()


# -----------------------------------------------------------------------------
# Running the scripts

# a tiny MoE: 2 layers, 4 experts of width 16, top-2; a few ms per iteration on one core
TINY = ['--n_layer=2', '--n_head=2', '--n_embd=32', '--n_expert=4', '--top_k=2', '--expert_size=16',
        '--block_size=32', '--batch_size=8', '--moe_backend=torch', '--device=cpu', '--compile=False',
        '--eval_iters=4', '--log_interval=1', '--warmup_iters=2']
# sonic in the scripts: Triton's CPU interpreter where there is no GPU, the GPU's kernels where there is
# one (this process sets TRITON_INTERPRET only without one, and the scripts inherit it)
SONIC = ['--moe_backend=sonic'] + (['--device=cuda'] if torch.cuda.is_available() else [])


def triton_interpreter():
    """A context in which the processes started run Triton's kernels in its CPU interpreter, also on a
    machine with a GPU (where this process leaves it off): for the scripts and ranks that keep their
    tensors on the CPU. A process reads the variable when it imports sonic_kernels."""
    return mock.patch.dict(os.environ, TRITON_INTERPRET='1')


def run(*args, timeout=240):
    """Runs a command from the repo root; returns the CompletedProcess (never raises on failure)."""
    # 1 thread: fast to start, deterministic. The fault handler prints each thread's Python stack if
    # a process dies on a signal (an abort in a library's C++ shows where Python was)
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1')
    return subprocess.run([str(a) for a in args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']


def torchrun(*args):
    """Runs a torchrun command line (TORCHRUN, or one with another --nproc_per_node) as run() does.
    Every rank must exit 0: an abort at teardown fails the test like any other error."""
    return run(*args)


def train(data_dir, out_dir, *args, timeout=240):
    return run(sys.executable, 'train.py', *TINY, f'--data_dir={data_dir}', f'--out_dir={out_dir}', *args,
               timeout=timeout)


def ok(r):
    """Asserts a CompletedProcess succeeded, showing its output if not."""
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
    """300 kB of the stdlib corpus, prepared by data/stdlib/prepare.py."""
    d = tmp_path_factory.mktemp('stdlib')
    ok(run(sys.executable, 'data/stdlib/prepare.py', '--max_bytes=300000', f'--out_dir={d}'))
    return d
