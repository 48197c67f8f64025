"""
bench.py end to end at tiny sizes, so that it cannot rot: every mode runs in a subprocess, as a user
would run it (with --tiny on the CPU), and its JSON and PNG outputs are checked. Without a GPU the
sonic kernels run in Triton's CPU interpreter (fp32) and grouped_mm must come out as an error entry,
not a crash.
    python -m pytest -q tests/test_bench.py        # a few minutes on 2 CPU cores
"""

import os
import sys
import json
import math
import pickle
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

import pytest
import torch

import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA = torch.cuda.is_available()
# fp32 everywhere: on CPU the interpreter has no bf16, and fp32 makes the check errors sharp
COMMON = ['--tiny', '--dtype=float32', '--backends=torch,sonic,grouped_mm', '--warmup=1', '--rep=1']
PARTS = ('layer', 'experts_only')


def run_bench(tmp_path, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')  # one thread: a tiny op on 2 busy cores waits less
    if not CUDA:
        env['TRITON_INTERPRET'] = '1'
    cmd = [sys.executable, os.path.join(ROOT, 'bench.py'), f'--out_dir={tmp_path}', *COMMON, *args]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"bench.py failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def load_json(path):
    assert path.exists(), f"{path} was not written"
    d = json.loads(path.read_text())
    assert d['torch'] == torch.__version__ and d['command'].startswith('python ') and d['device']
    return d


def assert_png(path):
    assert path.exists() and path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', f"{path} is not a PNG"


def positive(v):
    return isinstance(v, float) and math.isfinite(v) and v > 0


def check_layer_rows(rows, shapes_routings):
    """Every (shape, routing) has torch and sonic rows with positive timings, for the whole layer
    and for the experts only, and tiny errors; grouped_mm's are error entries on CPU."""
    assert {(r['label'], r['routing']) for r in rows} == shapes_routings
    for r in rows:
        for key in PARTS:
            p = r[key]
            if r['backend'] == 'grouped_mm' and not CUDA:
                assert 'error' in p and 'CUDA' in p['error'], r
                continue
            assert 'error' not in p, (key, r)
            for k in ('fwd_ms', 'bwd_ms', 'both_ms', 'fwd_tflops', 'bwd_tflops', 'both_tflops'):
                assert positive(p[k]), (key, k, r)
            # FLOPs count the valid pairs: fwd 6*R*n*d in the time measured
            flops = 6 * p['pairs'] * r['n'] * r['d']
            assert abs(p['fwd_tflops'] * p['fwd_ms'] * 1e9 - flops) < 1e-6 * flops
            if CUDA:
                assert positive(p['mib_fwd']) and positive(p['mib_peak']) and p['mib_peak'] >= p['mib_fwd']
            else:
                assert p['mib_fwd'] is None and p['mib_peak'] is None
        if r['backend'] != 'grouped_mm':  # grouped_mm computes in bf16 even from fp32 inputs
            err = r['experts_only']['err']
            assert set(err) == {'out', 'dx', 'dw1', 'dw2', 'dscore'}
            # the reference is the torch backend in fp32, so in fp32 the torch row is its own
            # reference (exactly 0 on the CPU, where it has no atomics: it checks the plumbing);
            # sonic's errors are the real check
            if r['backend'] == 'torch' and not CUDA:
                assert all(e == 0 for e in err.values()), err
            assert all(0 <= e < 1e-4 for e in err.values()), err
        # the whole layer routes every token to K experts under top-K, as the experts-only inputs do
        if r['routing'] == 'topk' and 'error' not in r['layer']:
            assert r['layer']['pairs'] == r['experts_only']['pairs'] == r['T'] * r['K']


def test_layer_topk_and_rounding(tmp_path):
    # T=64, E=4, K=2 with rounding tile 24: the expert counts [31, 32, 35, 30] (bench's logits come from a
    # seeded CPU generator, so on any device) round to 24 each, 96 valid pairs instead of 128, so the rounded
    # row must count its own FLOPs
    # the second shape has K odd and experts with few or no tokens; --only drops the third
    out = run_bench(tmp_path, '--mode=layer', '--shapes=64x32:16/4/2,64x16:16/16/3,48x48:32/8/8', '--only=64x',
                    '--routing=both', '--rounding_tile=24', '--check=True')
    d = load_json(tmp_path / 'layer.json')
    rows = d['results']
    check_layer_rows(rows, {(lab, r) for lab in ('64x32 16/4/2', '64x16 16/16/3') for r in ('topk', 'rounding')})
    pairs = {(r['label'], r['routing']): r['experts_only']['pairs'] for r in rows if r['backend'] == 'torch'}
    assert pairs[('64x32 16/4/2', 'topk')] == 128 and pairs[('64x32 16/4/2', 'rounding')] == 96
    assert pairs[('64x16 16/16/3', 'topk')] == 64 * 3
    # the whole layer rounds its own router's counts: a multiple of the tile per expert
    for r in rows:
        if r['routing'] == 'rounding' and r['backend'] == 'torch':
            assert r['layer']['pairs'] % 24 == 0 and r['layer']['pairs'] > 0
    assert d['reference']['SonicMoE H100 (paper)']['7B 256/128/8'] == {'fwd_tflops': 363, 'bwd_tflops': 404}
    # the table and the JSON say which columns time the whole layer and which a part
    assert set(d['parts']) == set(PARTS) and d['parts']['experts_only'].startswith('experts only (a part)')
    assert 'whole MoE layer' in out and 'experts only (a part)' in out
    assert out.index('whole MoE layer') < out.index('experts only (a part)')
    assert 'check sonic' in out and 'vs gmm' in out and '/contract' in out
    assert_png(tmp_path / 'layer_tflops.png')
    assert_png(tmp_path / 'layer_memory.png')
    assert d['tf32'] is True  # the timed runs use TF32 for fp32 matmuls, as train.py does


def test_checks_run_without_tf32(monkeypatch):
    # the fp32 reference and a checked pass run with TF32 off, whatever the timed runs use, and leave it as it was
    seen = []
    real = bench.moe.experts_torch

    def spy(*a):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return real(*a)
    monkeypatch.setattr(bench.moe, 'experts_torch', spy)
    old = torch.backends.cuda.matmul.allow_tf32  # a property of torch's, which monkeypatch cannot set
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        torch.manual_seed(0)
        T, d, n, E = 8, 4, 3, 2
        x, w1, w2 = torch.randn(T, d), torch.randn(E, d, 2 * n), torch.randn(E, n, d)
        pe = torch.randint(0, E, (T,))
        out, dx, dw1, dw2, ds = bench.reference((x, w1, w2, torch.arange(T), pe, torch.rand(T)), torch.randn(T, d))
        assert seen == [False] and torch.backends.cuda.matmul.allow_tf32 is True
        assert torch.isfinite(out).all() and out.shape == (T, d) and dw1.shape == w1.shape and ds.shape == (T,)
        with pytest.raises(RuntimeError), bench.tf32_off():  # an error inside still restores it
            assert torch.backends.cuda.matmul.allow_tf32 is False
            raise RuntimeError
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def test_sweep(tmp_path):
    # n*K = 64 from n=32 (K=2, E=4) down to n=16 (K=4, E=8); the layer test runs sonic, this one need not
    run_bench(tmp_path, '--mode=sweep', '--sweep_T=48', '--sweep_d=32', '--sweep_nK=64', '--sweep_E0=4',
              '--sweep_n_min=16', '--check=True', '--backends=torch,grouped_mm')
    rows = load_json(tmp_path / 'sweep.json')['results']
    check_layer_rows(rows, {('48x32 32/4/2', 'topk'), ('48x32 16/8/4', 'topk')})
    # the memory contract is the same at both granularities, up to O(R) metadata
    c = sorted(r['mib_contract'] for r in rows)
    assert positive(c[0]) and c[-1] < 1.2 * c[0]
    assert_png(tmp_path / 'sweep.png')


def test_train(tmp_path):
    run_bench(tmp_path, '--mode=train', '--n_layer=2', '--n_head=2', '--n_embd=32', '--n_expert=4', '--top_k=2',
              '--expert_size=16', '--block_size=16', '--batch_size=2', '--vocab_size=64', '--burnin=1', '--steps=2')
    rows = load_json(tmp_path / 'train.json')['results']
    assert [r['backend'] for r in rows] == ['torch', 'sonic', 'grouped_mm']
    for r in rows:
        if r['backend'] == 'grouped_mm' and not CUDA:
            assert 'CUDA' in r['error']
            continue
        for k in ('step_ms', 'tokens_per_s', 'mfu', 'loss'):
            assert positive(r[k]), (k, r)
        # the mean step lies within its timed steps' spread: both come from the same timed steps
        assert 0 < r['step_ms_min'] <= r['step_ms_median'] <= r['step_ms_max'], r
        assert r['step_ms_min'] * (1 - 1e-9) <= r['step_ms'] <= r['step_ms_max'] * (1 + 1e-9), r
        each = r['step_ms_each']  # every timed step in order, so a slow one can be found
        assert len(each) == 2 and min(each) == pytest.approx(r['step_ms_min'], abs=1e-3), r
        assert sum(each) / len(each) == pytest.approx(r['step_ms'], abs=1e-3), r
        # each step's busiest expert over the mean: 1 when balanced, n_expert / top_k when one expert takes
        # every token (a token picks top_k different experts)
        load = r['load_max_over_mean_each']
        assert len(load) == 2 and all(1 <= x <= 4 / 2 for x in load), r
        assert r['active_params'] < r['params']
        if CUDA:
            assert positive(r['peak_mib']) and positive(r['moe_layer_mib_fwd'])
        else:
            assert r['peak_mib'] is None and r['moe_layer_mib_fwd'] is None
    # same seed, same data, same routing: the backends train the same model to the same loss, through the same
    # loads; and this seed's 32 pairs a layer do not split evenly over the 4 experts, so a ratio stuck at 1 fails
    assert abs(rows[0]['loss'] - rows[1]['loss']) < 1e-3
    assert rows[0]['load_max_over_mean_each'] == rows[1]['load_max_over_mean_each']
    assert max(rows[0]['load_max_over_mean_each']) > 1


def test_load(tmp_path):
    # train.py's format: per log interval, tokens per expert of each MoE layer (2 layers, 4 experts)
    recs = [{'iter': 0, 'tokens_per_expert': [[10, 10, 10, 10], [40, 0, 0, 0]]},
            {'iter': 10, 'tokens_per_expert': [[5, 15, 10, 10], [10, 10, 10, 10]]},
            {'iter': 20, 'tokens_per_expert': [[0, 20, 10, 10], [30, 10, 0, 0]]}]
    (tmp_path / 'expert_load.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    run_bench(tmp_path, '--mode=load', f"--load_file={tmp_path / 'expert_load.jsonl'}")
    d = load_json(tmp_path / 'load.json')
    assert d['last_interval'] == {'0': {'max_over_mean': 2.0, 'min_over_mean': 0.0},
                                  '1': {'max_over_mean': 3.0, 'min_over_mean': 0.0}}
    assert_png(tmp_path / 'expert_load.png')
    # a run killed mid-write leaves its last line unfinished: it is left out, with a note
    cut = tmp_path / 'cut.jsonl'
    cut.write_text(''.join(json.dumps(r) + '\n' for r in recs) + '{"iter": 30, "tokens_per')
    assert 'unfinished line' in run_bench(tmp_path, '--mode=load', f'--load_file={cut}')
    assert load_json(tmp_path / 'load.json')['last_interval'] == d['last_interval']
    # a directory, and a file that is not JSON lines
    for bad, says in ((tmp_path, 'not a file'), (Path(ROOT) / 'README.md', "not one of train.py's .jsonl logs")):
        assert says in bench_fails(tmp_path, '--mode=load', f'--load_file={bad}')
        assert says in bench_fails(tmp_path, '--mode=curves', f'--log_files={bad}')
    # the wrong file (a train.py log.jsonl), and a run with no MoE layer: a message each
    (tmp_path / 'log.jsonl').write_text(json.dumps({'iter': 0, 'loss': 5.0}) + '\n')
    (tmp_path / 'dense.jsonl').write_text(json.dumps({'iter': 0, 'tokens_per_expert': []}) + '\n')
    for name, says in (('log.jsonl', "not train.py's expert_load.jsonl"), ('dense.jsonl', 'no MoE layer')):
        p = subprocess.run([sys.executable, os.path.join(ROOT, 'bench.py'), '--mode=load', f'--load_file={tmp_path / name}',
                            f'--out_dir={tmp_path}'], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and says in p.stderr and 'Traceback' not in p.stderr, p.stderr


def bench_fails(tmp_path, *args, tiny=True):
    """Runs bench.py expecting a clean refusal; returns its stderr."""
    env = dict(os.environ, TRITON_INTERPRET='1')
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'bench.py'), f'--out_dir={tmp_path}',
                        *(['--tiny'] if tiny else []), *args],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and 'Traceback' not in p.stderr, p.stderr
    return p.stderr


def test_bad_shape_message(tmp_path):
    assert 'TxD:n/E/K' in bench_fails(tmp_path, '--shapes=64x32:16/4')
    for bad in ('64x32:16/4/8', '64x32:16/4/0', '0x32:16/4/2'):  # K > E, K = 0, T = 0
        assert '1 <= K <= E' in bench_fails(tmp_path, f'--shapes={bad}')
    assert 'sweep_n_min >= 1' in bench_fails(tmp_path, '--mode=sweep', '--sweep_n_min=0')
    assert 'sweep_E0 >= 2' in bench_fails(tmp_path, '--mode=sweep', '--sweep_E0=1')
    assert "dtype='fp8'" in bench_fails(tmp_path, '--dtype=fp8', '--device=cpu')  # checked on any device
    assert "device='foo'" in bench_fails(tmp_path, '--device=foo')
    assert 'grad_clip=-1.0: use a norm above 0' in bench_fails(tmp_path, '--mode=train', '--grad_clip=-1')


def test_help_lists_only_the_keys():
    # bench.py's own loop over argv must not leak a global that the configurator then takes for a key
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'bench.py'), '--tiny', '--help'], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and '--mode=' in p.stdout and '--out_dir=' in p.stdout, p.stdout + p.stderr
    keys = [l.strip().split('=')[0] for l in p.stdout.splitlines() if l.strip().startswith('--')]
    assert '--mode' in keys and '--a' not in keys, keys


@pytest.mark.skipif(CUDA, reason="the refusal of a machine without a CUDA GPU")
def test_cuda_graphs_needs_cuda_and_the_layer_modes(tmp_path):
    # stops at once, in one line that says what to do, and writes nothing
    err = bench_fails(tmp_path, '--cuda_graphs=True')
    assert '--cuda_graphs=True needs a CUDA GPU' in err and 'drop it on the CPU' in err, err
    assert len(err.strip().splitlines()) == 1, err
    err = bench_fails(tmp_path, '--mode=train', '--cuda_graphs=True')
    assert "drop it for mode='train'" in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not CUDA, reason="CUDA graphs need a CUDA GPU")
def test_layer_as_cuda_graphs(tmp_path):
    # the whole layer's forward and backward as CUDA graphs: timed, and bitwise the eager step; a tiny
    # shape (Triton kernels only) and one where the Hopper kernels run
    out = run_bench(tmp_path, '--mode=layer', '--shapes=64x32:16/4/2,8192x768:256/32/8', '--backends=sonic',
                    '--dtype=bfloat16', '--cuda_graphs=True', '--check=False')
    d = load_json(tmp_path / 'layer.json')
    assert list(d['parts']) == ['layer', 'graphed', 'experts_only']
    assert len(d['results']) == 2
    for r, T, K in zip(d['results'], (64, 8192), (2, 8)):
        g = r['graphed']
        assert 'error' not in g, g
        for k in ('fwd_ms', 'both_ms', 'fwd_tflops', 'both_tflops', 'host_ms'):
            assert positive(g[k]), (k, g)
        assert g['bwd_ms'] is None and g['bwd_tflops'] is None  # not timed alone (bench.run_graphed)
        assert g['same_as_eager'] is True
        assert positive(r['layer']['host_ms']) and 'host_ms' not in r['experts_only']
        assert g['pairs'] == r['layer']['pairs'] == T * K
        assert g['mib_fwd'] is None and g['mib_peak'] is None  # the graphs' pool holds static memory
    assert 'whole MoE layer as CUDA graphs' in out and 'host ms' in out
    assert_png(tmp_path / 'layer_tflops.png')


def test_rounding_with_too_few_tokens_is_an_error_row(tmp_path):
    # 64 tokens, a 128-row tile: rounding leaves no rows; the shape gets error rows, the run goes on
    run_bench(tmp_path, '--backends=torch', '--shapes=64x32:16/4/2', '--routing=both')
    rows = load_json(tmp_path / 'layer.json')['results']
    assert [r['routing'] for r in rows] == ['topk', 'rounding']
    assert all('error' not in rows[0][k] for k in PARTS)
    assert 'T=64 < rounding_tile=128' in rows[1]['experts_only']['error']
    assert 'at least rounding_tile=128 tokens' in rows[1]['layer']['error']  # MoE's own message


def test_curves(tmp_path):
    # train.py's log.jsonl: eval records carry val_loss, log-interval records carry loss
    for name, shift in (('a', 0.0), ('b', 0.1)):
        (tmp_path / name).mkdir()
        recs = [{'iter': 0, 'train_loss': 5.0, 'val_loss': 5.0 + shift}, {'iter': 0, 'loss': 5.1, 'lr': 1e-3},
                {'iter': 10, 'loss': 3.0, 'lr': 1e-3}, {'iter': 20, 'train_loss': 2.0, 'val_loss': 2.5 + shift}]
        (tmp_path / name / 'log.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    files = f"{tmp_path / 'a' / 'log.jsonl'},{tmp_path / 'b' / 'log.jsonl'}"
    with open(tmp_path / 'b' / 'log.jsonl', 'a') as f:
        f.write('{"iter": 30, "los')  # a run killed mid-write
    run_bench(tmp_path, '--mode=curves', f'--log_files={files}')
    d = load_json(tmp_path / 'curves.json')
    assert d['val_loss'] == {'a': {'0': 5.0, '20': 2.5}, 'b': {'0': 5.1, '20': 2.6}}
    assert_png(tmp_path / 'curves.png')
    env = dict(os.environ, TRITON_INTERPRET='1')
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'bench.py'), '--mode=curves', f'--log_files={files}',
                        '--labels=only_one', f'--out_dir={tmp_path}'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and 'one per file' in p.stderr


def test_kernels(tmp_path):
    # one whole layer's forward+backward under the profiler, per kernel (per op on the CPU)
    out = run_bench(tmp_path, '--mode=kernels', '--shapes=64x32:16/4/2', '--kernels_top=5')
    rows = load_json(tmp_path / 'kernels.json')['results']
    assert [r['backend'] for r in rows] == ['torch', 'sonic', 'grouped_mm']
    for r in rows:
        if r['backend'] == 'grouped_mm' and not CUDA:
            assert 'CUDA' in r['error']
            continue
        ks = r['kernels']
        assert len(ks) > 5 and all(k['calls'] > 0 and k['ms'] >= 0 for k in ks)
        assert [k['ms'] for k in ks] == sorted((k['ms'] for k in ks), reverse=True)
        assert abs(sum(k['share'] for k in ks) - 1) < 1e-6
        assert abs(sum(k['ms'] for k in ks) - r['busy_ms']) < 1e-6 * r['busy_ms']
        # each op's self time: the table adds up to the time ops ran, with no op counted with its children
        if not CUDA:
            assert abs(r['busy_ms'] - r['busy_span_ms']) < 0.01 * r['busy_span_ms'], r
        assert positive(r['enqueue_ms']) and positive(r['run_ms'])
        if r['backend'] == 'sonic' and not CUDA:  # the interpreted kernels run inside their autograd Functions
            assert {k['name'] for k in ks[:3]} & {'sonic_moe_fwd', 'sonic_moe_fwdBackward'}, ks[:3]
        if r['backend'] == 'sonic' and CUDA:  # each expert GEMM beside cuBLAS's dense GEMM of its size
            gemm = {bench.GEMM_ALIASES.get(k['name'], k['name']): k for k in ks if 'tflops' in k}
            assert set(gemm) == set(bench.expert_gemms(64, 32, 16, 4, 2)), gemm
            # both from the passes that run the layer and then the dense GEMMs
            assert all(positive(k['tflops']) and positive(k['cublas_tflops']) and positive(k['ms_beside_cublas'])
                       for k in gemm.values())
    # the table: the top 5, the rest in one row, and the shares' sum
    tables = sum('error' not in r for r in rows)  # grouped_mm runs on a GPU only
    assert out.count('more)') == tables and out.count('100.0%') == tables and 'host enqueue' in out


def test_kernel_totals_times_each_dense_gemm_apart():
    # kernels mode's dense GEMMs each run in a profiler range of their own: kernel_totals gives each range's
    # time every time it ran (on a GPU, its kernels' time), and keeps the ranges out of the kernel table
    a, w = torch.randn(1, 64, 32, device=bench.device_type), torch.randn(1, 32, 16, device=bench.device_type)
    names = [f"{bench.CUBLAS_RANGE}_up_swiglu_kernel:{i}" for i in range(2)]

    def fn():
        for name in names:
            bench.dense_mm(a, w, name)
    totals, ranges = bench.kernel_totals(fn, 3, bench.CUBLAS_RANGE)
    assert sorted(ranges) == names and all(len(ranges[n]) == 3 for n in names), dict(ranges)
    assert not any(k.startswith(bench.CUBLAS_RANGE) for k in totals)
    if CUDA:
        assert all(v > 0 for n in names for v in ranges[n]) and sum(totals.values()) > 0


def test_warm_up_runs_for_its_time():
    # kernels mode's untimed passes before its profiles: fn again and again for about the time asked, at
    # least once; none for 0 ms (--tiny)
    bench.warm_up(lambda: None, 1)   # on a GPU its first pass starts CUDA, which takes longer than the 60 ms
    calls = []
    t0 = time.perf_counter()
    bench.warm_up(lambda: (calls.append(1), time.sleep(0.005)), 60)
    assert len(calls) >= 2 and (time.perf_counter() - t0) * 1e3 >= 60
    calls.clear()
    bench.warm_up(lambda: calls.append(1), 0)
    assert not calls


def test_expert_gemms_do_the_layers_flops():
    # the dense GEMMs kernels mode times cuBLAS on do the expert layer's forward+backward FLOPs
    for T, d, n, E, K in ((40960, 768, 256, 128, 8), (32768, 4096, 2048, 64, 4), (64, 32, 16, 4, 2)):
        gemms = bench.expert_gemms(T, d, n, E, K)
        assert sum(bench.gemm_flops(g) for g in gemms.values()) == bench.moe_flops(T * K, d, n)['both']
        assert bench.gemm_flops(gemms['_up_swiglu_kernel']) + bench.gemm_flops(gemms['_grouped_mm_kernel'][:1]) \
            == bench.moe_flops(T * K, d, n)['fwd']


def test_a_dataset_brings_its_vocabulary(tmp_path):
    # with a dataset, the model's vocabulary is its meta.pkl's, as train.py builds it (stdlib's 256
    # bytes), not bench.py's vocab_size for random tokens: the head and the loss scale with it
    name = f'bench_vocab_test_{os.getpid()}'
    ddir = os.path.join(ROOT, 'data', name)
    os.makedirs(ddir)
    try:
        np.random.default_rng(0).integers(0, 100, 4096).astype(np.uint16).tofile(os.path.join(ddir, 'train.bin'))
        with open(os.path.join(ddir, 'meta.pkl'), 'wb') as f:
            pickle.dump({'vocab_size': 100}, f)
        run_bench(tmp_path, '--mode=profile', f'--dataset={name}', '--backends=torch')
        assert load_json(tmp_path / 'profile.json')['config']['vocab_size'] == 100
    finally:
        shutil.rmtree(ddir)


def test_profile_from_a_train_config(tmp_path):
    # a train.py config file: its model and batch settings are taken, train.py's own (out_dir,
    # max_iters) are not, and a flag still overrides it (n_layer)
    cfg = tmp_path / 'tiny_moe.py'
    cfg.write_text("out_dir = 'out-tiny'\nmax_iters = 3\nn_layer = 3\nn_head = 2\nn_embd = 32\nn_expert = 4\n"
                   "top_k = 2\nexpert_size = 16\nn_dense_layers = 1\nblock_size = 16\nbatch_size = 2\n"
                   "moe_backend = 'torch'\n")
    out = run_bench(tmp_path, '--mode=profile', f'--config_file={cfg}', '--n_layer=2', '--backends=torch')
    assert 'max_iters' not in out and not (tmp_path / 'out-tiny').exists()
    d = load_json(tmp_path / 'profile.json')
    assert d['config']['n_layer'] == 2 and d['config']['batch_size'] == 2 and d['config']['out_dir'] == str(tmp_path)
    [r] = d['results']
    parts = r['parts']
    assert list(parts) == list(d['parts'])
    # the parts (idle and other included) add up to the step: no kernel or op counted twice or lost
    assert abs(r['parts_sum_ms'] - r['step_ms']) < 0.03 * r['step_ms'], r
    assert abs(sum(p['ms'] for p in parts.values()) - r['step_ms']) < 0.03 * r['step_ms']
    for p in ('attention', 'moe router', 'moe routing', 'moe experts', 'dense mlp', 'norms and residuals',
              'embeddings and head', 'loss', 'optimizer'):
        assert parts[p]['ms'] > 0, (p, parts)
    assert parts['communication']['ms'] == 0
    assert (r['top_kernels'] is None) == (not CUDA)   # kernels by name: the GPU's
    assert 'moe experts' in out and 'idle' in out
    assert_png(tmp_path / 'profile.png')


def profile_sonic(tmp_path, widths):
    """bench.py's profile of a sonic model of these widths (a train.py config file's lines): its one
    result, whose parts add up to the step (no kernel or op counted twice or lost)."""
    cfg = tmp_path / 'sonic_moe.py'
    cfg.write_text(widths + "moe_backend = 'sonic'\n")
    run_bench(tmp_path, '--mode=profile', f'--config_file={cfg}', '--backends=sonic')
    [r] = load_json(tmp_path / 'profile.json')['results']
    assert abs(r['parts_sum_ms'] - r['step_ms']) < 0.03 * r['step_ms'], r
    return r


def test_profile_splits_the_sonic_layer(tmp_path):
    # sonic's layer in its three parts: the fused router (and its losses), the routing metadata its expert
    # op builds inside, and the experts
    r = profile_sonic(tmp_path, "n_layer = 2\nn_head = 2\nn_embd = 32\nn_expert = 4\ntop_k = 2\nexpert_size = 16\n"
                                "block_size = 16\nbatch_size = 2\n")
    for p in ('moe router', 'moe routing', 'moe experts'):
        assert r['parts'][p]['ms'] > 0, (p, r['parts'])
    # as train.py, the clip's norm takes the expert gradients' sums of squares from the kernels where the clip
    # runs inside AdamW (TritonAdamW: CUDA), 2 layers x w1 and w2 a step
    if CUDA:
        assert r['norm_from_kernels'] and r['norm_from_kernels'] % 4 == 0, r
    else:
        assert r['norm_from_kernels'] is None


@pytest.mark.skipif(not CUDA, reason="the GPU's kernels, Gluon's included, are profiled on CUDA only")
def test_profile_counts_every_kernel_on_the_gpu(tmp_path):
    # sonic in bf16 at sizes where sm_90 runs its Gluon kernels, whose launches the profiler once linked to
    # no op on the H200: every kernel's time still lands in a part, the experts' in theirs, and the routing
    # metadata's Triton kernels (linked to the expert op around them) in the routing's
    r = profile_sonic(tmp_path, "n_layer = 2\nn_head = 4\nn_embd = 256\nn_expert = 8\ntop_k = 2\nexpert_size = 128\n"
                                "block_size = 256\nbatch_size = 8\n")
    parts = r['parts']
    assert parts['moe experts']['ms'] > 0 and parts['other']['ms'] < 0.05 * r['step_ms'], parts
    assert {name for name, _ in r['top_kernels']['moe routing']} & set(bench.ROUTING_KERNELS), r['top_kernels']
    assert r['comm_exposed_ms'] == 0
    # each part's largest kernels, as many as PROFILE_TOP, add up to no more than the part
    for p, ks in r['top_kernels'].items():
        assert 0 < len(ks) <= bench.PROFILE_TOP and sum(t for _, t in ks) <= parts[p]['ms'] * 1.001, (p, ks)
    # the same steps unprofiled, and the part of them the device waited: at most the profiled step's idle
    assert 0 < r['unprofiled_step_ms'] and 0 <= r['unprofiled_idle_ms'] <= parts['idle']['ms'] + 0.05 * r['step_ms'], r


def torchrun_bench(tmp_path, *args):
    # two gloo ranks on the CPU, wherever the test runs
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           os.path.join(ROOT, 'bench.py'), f'--out_dir={tmp_path}', '--tiny', '--device=cpu', '--backends=torch', *args]
    return subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True,
                          text=True, timeout=300)


def test_profile_under_torchrun_is_ddp(tmp_path):
    # each rank a DDP replica as train.py makes it: the gradients' all-reduce shows as communication,
    # rank 0 alone reports and writes, and gradient_accumulation_steps is global, as in train.py
    p = torchrun_bench(tmp_path, '--mode=profile', '--gradient_accumulation_steps=2')
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert p.stdout.count('ms per step') == 1 and 'rank 0 of 2 (DDP)' in p.stdout, p.stdout
    d = load_json(tmp_path / 'profile.json')
    [r] = d['results']
    assert r['world_size'] == 2 and d['config']['gradient_accumulation_steps'] == 2 and r['micro_steps'] == 1
    assert r['parts']['communication']['ms'] > 0, r['parts']
    assert r['comm_exposed_ms'] is None  # kernels' overlap is measured on CUDA only
    assert abs(r['parts_sum_ms'] - r['step_ms']) < 0.03 * r['step_ms'], r
    # a global count the ranks cannot share, and the modes that run in one process, stop at once
    for args, msg in [(('--mode=profile', '--gradient_accumulation_steps=3'), 'divisible by the 2 ranks'),
                      (('--mode=train',), 'only mode=profile runs')]:
        p = torchrun_bench(tmp_path, *args)
        assert p.returncode != 0 and msg in p.stderr, p.stderr[-2000:]


def test_kernels_go_to_the_part_of_their_op(monkeypatch):
    # a CPU op lists its kernels by name and duration only (torch's profiler Kernel), so the GPU's own
    # events give the intervals (NCCL's apart, for the exposed communication) and the time, each kernel
    # going to the part of an op that claims its name and duration; a kernel no op claims (as the Gluon
    # kernels' launches were on the H200) goes to the next claimed kernel's part on its stream
    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import FunctionEvent
    def ev(i, name, s, t, dev=DeviceType.CUDA, stream=7):
        e = FunctionEvent(id=i, name=name, thread=0, start_us=s, end_us=t, device_type=dev)
        e.device_resource_id = stream   # set after: not every torch takes it as an argument
        return e
    attention = ev(11, bench.RANGE + 'attention', 0, 6, DeviceType.CPU)
    mm = ev(2, 'aten::mm', 0, 5, DeviceType.CPU)
    mm.cpu_parent = attention
    mm.append_kernel('nvjet_sm90_tss_128x256', 0, 20)
    experts = ev(1, bench.RANGE + 'moe experts', 6, 50, DeviceType.CPU)
    experts.append_kernel('_gather_sum_kernel', 0, 2)
    events = [experts, attention, mm,
              ev(3, 'nvjet_sm90_tss_128x256', 0, 20), ev(4, bench.RANGE + 'moe experts', 0, 40),
              ev(5, '_up_hopper_kernel', 20, 26),                          # claimed by no op
              ev(6, 'ncclDevKernel_AllReduce_Sum_f32_RING_LL', 10, 30, stream=9),
              ev(7, '_gather_sum_kernel', 26, 28), ev(8, '_adamw_kernel', 40, 41),
              ev(9, '_route_place_kernel', 19, 20, stream=8)]   # claimed by the expert op, as on the H200
    experts.append_kernel('_route_place_kernel', 0, 1)
    kernels = bench.gpu_kernels(events)
    assert [k.name for k in kernels] == ['nvjet_sm90_tss_128x256', 'ncclDevKernel_AllReduce_Sum_f32_RING_LL',
                                         '_route_place_kernel', '_up_hopper_kernel', '_gather_sum_kernel',
                                         '_adamw_kernel']
    claimed = {('nvjet_sm90_tss_128x256', 20): ['attention'], ('_gather_sum_kernel', 2): ['moe experts'],
               ('_route_place_kernel', 1): ['moe experts']}
    assert bench.kernel_parts(kernels, claimed) == ['attention', 'other', 'moe routing', 'moe experts', 'moe experts',
                                                    'other']
    comm, other = bench.kernel_spans(kernels)
    assert comm == [(10, 30)] and other == [(0, 20), (19, 20), (20, 26), (26, 28), (40, 41)]
    assert bench.exposed_us(comm, other) == 2       # 28-30
    monkeypatch.setattr(bench, 'device_type', 'cuda')
    us, exposed, by_name = bench.split_step(events, wall_us=50)
    assert us['moe experts'] == 8 and us['attention'] == 20 and us['other'] == 21 and exposed == 2
    assert us['moe routing'] == 1 and us['idle'] == 50 - 31
    assert by_name['moe experts'] == [('_up_hopper_kernel', 6), ('_gather_sum_kernel', 2)]
    assert by_name['other'] == [('ncclDevKernel_AllReduce_Sum_f32_RING_LL', 20), ('_adamw_kernel', 1)]
    sk = bench.moe.sonic_kernels   # the names routing goes by are sonic's kernels (Triton is a test requirement)
    assert sk is not None and all(hasattr(sk, name) for name in bench.ROUTING_KERNELS)


def test_a_compiled_step_goes_to_parts_by_its_ops(monkeypatch):
    # compiled, no range marks the parts: a kernel goes to its op's part (sonic's ops and attention by name,
    # a GEMM by a weight's shape among its operands or product), the compiler's own fused kernels by the ops
    # their names list, and the optimizer, outside the compiled graphs, by its range as when eager
    from torch.autograd import DeviceType
    from torch.autograd.profiler_util import FunctionEvent
    from model import GPT, GPTConfig
    gpt = GPT(GPTConfig(block_size=24, vocab_size=64, n_layer=2, n_head=2, n_embd=32, n_expert=4, top_k=2,
                        expert_size=8, n_dense_layers=0, moe_backend='torch'))
    parts = bench.weight_parts(gpt)
    assert parts == {(32, 96): 'attention', (32, 32): 'attention', (4, 32): 'moe router', (16, 32): 'moe experts',
                     (8, 32): 'moe experts', (32, 64): 'embeddings and head', (24, 32): 'embeddings and head'}
    gpt = GPT(GPTConfig(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32, n_expert=4, top_k=2,
                        expert_size=8, n_dense_layers=0, moe_backend='torch'))
    assert (16, 32) not in bench.weight_parts(gpt)   # wpe and w1: a shape two parts hold names neither
    monkeypatch.setattr(bench, 'WEIGHT_PARTS', parts)
    def ev(i, name, s, t, parent=None, dev=DeviceType.CPU, shapes=None):
        e = FunctionEvent(id=i, name=name, thread=0, start_us=s, end_us=t, device_type=dev, input_shapes=shapes)
        e.device_resource_id = 7
        e.cpu_parent = parent
        return e
    graph = ev(1, bench.COMPILED_GRAPH + ' fabc ##', 0, 50)
    qkv = ev(2, 'aten::mm', 1, 2, graph, shapes=[[128, 32], [32, 96]])          # x @ W^T
    dw = ev(3, 'aten::mm', 3, 4, graph, shapes=[[96, 128], [128, 32]])          # its weight gradient: the product
    act = ev(4, 'aten::mm', 5, 6, graph, shapes=[[128, 128], [128, 128]])       # no weight's shape
    sdpa = ev(5, 'aten::_scaled_dot_product_cudnn_attention', 7, 8, graph)
    op = ev(6, 'sonic::moe_fwd', 9, 10, graph)
    opt = ev(9, bench.RANGE + 'optimizer', 55, 75)
    norm = ev(10, 'aten::_foreach_norm', 56, 57, opt)   # the clip's norm: in make_train_step's range only
    step = ev(7, 'Optimizer.step#TritonAdamW.step', 60, 70, opt)
    adamw = ev(8, 'sonic::adamw_', 61, 69, step)
    kernels = [('nvjet_a', 2, qkv), ('nvjet_b', 3, dw), ('nvjet_c', 4, act), ('cudnn_sdpa', 5, sdpa),
               ('_up_hopper_kernel', 6, op), ('triton_per_fused_add_native_layer_norm_3', 7, graph),
               ('triton_red_fused__log_softmax_nll_loss_forward_9', 8, graph), ('triton_poi_fused__to_copy_4', 9, graph),
               ('_adamw_kernel', 10, adamw), ('multi_tensor_apply_kernel', 11, norm)]
    events = [graph, qkv, dw, act, sdpa, op, opt, norm, step, adamw]
    for name, dur, e in kernels:
        e.append_kernel(name, 0, dur)
        events.append(ev(100 + dur, name, 100 * dur, 100 * dur + dur, dev=DeviceType.CUDA))
    assert [bench.op_part(e) for e in (qkv, dw, act, sdpa, op, adamw, norm)] == \
        ['attention', 'attention', bench.COMPILED_GRAPH, 'attention', 'moe experts', 'optimizer', 'optimizer']
    monkeypatch.setattr(bench, 'device_type', 'cuda')
    us, _, _ = bench.split_step(events, wall_us=1000, compiled=True)
    assert us['attention'] == 2 + 3 + 5 and us['moe experts'] == 6 and us['norms and residuals'] == 7
    assert us['loss'] == 8 and us['optimizer'] == 10 + 11 and us['other'] == 4 + 9
    assert us['idle'] == 1000 - sum(d for _, d, _ in kernels)


def test_profile_of_the_compiled_step(tmp_path):
    # compile=True profiles the step train.py runs compiled; on the CPU its graphs' own C++ code names no part
    cfg = tmp_path / 'tiny_moe.py'
    cfg.write_text("n_layer = 2\nn_head = 2\nn_embd = 32\nn_expert = 4\ntop_k = 2\nexpert_size = 8\n"
                   "block_size = 16\nbatch_size = 2\nmoe_backend = 'torch'\ncompile = True\n")
    out = run_bench(tmp_path, '--mode=profile', f'--config_file={cfg}', '--backends=torch')
    [r] = load_json(tmp_path / 'profile.json')['results']
    assert r['compiled'] and 'compiled steps' in out
    assert r['unprofiled_step_ms'] > 0 and 'device waited' in out
    assert abs(r['parts_sum_ms'] - r['step_ms']) < 0.03 * r['step_ms'], r
    for p in ('attention', 'moe experts', 'optimizer'):
        assert r['parts'][p]['ms'] > 0, (p, r['parts'])


def test_exposed_communication_is_what_no_other_kernel_covers():
    comm, other = [(0, 10), (20, 30)], [(5, 25), (40, 50)]
    assert bench.exposed_us(comm, other) == 10      # 0-5 and 25-30
    assert bench.exposed_us(comm, []) == 20
    assert bench.exposed_us([], other) == 0
    assert bench.exposed_us([(0, 10)], [(0, 10)]) == 0


def test_cpu_needs_tiny(tmp_path):
    # the default sizes never finish on a CPU: stop at once and say to add --tiny
    for mode in ('layer', 'profile'):
        err = bench_fails(tmp_path, f'--mode={mode}', '--device=cpu', tiny=False)
        assert '--tiny' in err and len(err.strip().splitlines()) == 1, err
    # load and curves read files: they need no --tiny
    assert 'not a file' in bench_fails(tmp_path, '--mode=load', f'--load_file={tmp_path}', tiny=False)
