"""configurator.py: overrides apply, and every mistake a user can make stops with a helpful message."""
import sys

import pytest

from conftest import REPO, run

SOURCE = (REPO / 'configurator.py').read_text()


def configure(monkeypatch, *argv):
    """Execs configurator.py over a small set of train.py-like globals, as train.py does."""
    g = dict(batch_size=12, learning_rate=6e-4, compile=False, dataset='stdlib', wandb_run_name='run',
             maybe=None)
    monkeypatch.setattr(sys, 'argv', ['train.py', *argv])
    exec(SOURCE, g)
    return {k: v for k, v in g.items() if not k.startswith('_')}


def error(monkeypatch, *argv):
    with pytest.raises(SystemExit) as e:
        configure(monkeypatch, *argv)
    return str(e.value)


def test_overrides(monkeypatch, tmp_path):
    cfg = tmp_path / 'c.py'
    cfg.write_text("import math\nbatch_size = 64\nlearning_rate = 1e-3 * math.sqrt(4)\n")
    g = configure(monkeypatch, str(cfg), '--batch_size=32', '--compile=True', '--dataset=shakespeare_char',
                  '--learning_rate=1', '--maybe=[1, 2]')
    assert g['batch_size'] == 32  # the command line comes after the file and wins
    assert g['compile'] is True and g['dataset'] == 'shakespeare_char' and g['maybe'] == [1, 2]
    assert g['learning_rate'] == 1.0 and type(g['learning_rate']) is float  # int promoted to float
    g = configure(monkeypatch, str(cfg))
    assert g['batch_size'] == 64 and g['learning_rate'] == pytest.approx(2e-3)


def test_unknown_key_suggests_close_ones(monkeypatch):
    msg = error(monkeypatch, '--learning_rte=1e-3')
    assert "unknown key 'learning_rte'" in msg and 'Did you mean learning_rate' in msg and '--help' in msg


@pytest.mark.parametrize('arg, want', [('--batch_size=1.5', 'int'), ('--batch_size=True', 'int'),
                                       ('--compile=1', 'bool'), ('--learning_rate=fast', 'float'),
                                       ('--dataset=3', 'str')])
def test_wrong_type(monkeypatch, arg, want):
    key = arg[2:].split('=')[0]
    msg = error(monkeypatch, arg)
    assert f"'{key}'" in msg and f'must be {want}' in msg and 'Write it as' in msg


def test_config_file_errors(monkeypatch, tmp_path):
    msg = error(monkeypatch, str(tmp_path / 'missing.py'))
    assert 'cannot read config file' in msg and 'missing.py' in msg
    bad = tmp_path / 'bad.py'
    bad.write_text("batch_sise = 3\n")
    msg = error(monkeypatch, str(bad))
    assert "unknown key 'batch_sise'" in msg and 'bad.py' in msg and 'batch_size' in msg
    bad.write_text("batch_size = 'big'\n")
    msg = error(monkeypatch, str(bad))
    assert "'batch_size'" in msg and 'must be int' in msg
    # a file Python cannot compile or run, or one that is not text: the file, the line and the error
    for text, says in [("batch_size = (\n", "line 1: SyntaxError"), ("x = 1\nbatch_size = foo\n", "line 2: NameError")]:
        bad.write_text(text)
        msg = error(monkeypatch, str(bad))
        assert 'config error' in msg and 'bad.py' in msg and says in msg, msg
    bad.write_bytes(b"\x80\x04\x95 a pickle, not a config")
    assert 'cannot read config file' in error(monkeypatch, str(bad))
    msg = error(monkeypatch, str(tmp_path))  # a directory
    assert 'cannot read config file' in msg


def test_values_python_cannot_read_are_strings(monkeypatch):
    # literal_eval raises TypeError on '{[]}' and friends: they are text, like any plain word
    assert configure(monkeypatch, '--dataset={[]}')['dataset'] == '{[]}'
    assert configure(monkeypatch, '--dataset={[1]: 2}')['dataset'] == '{[1]: 2}'


def test_flag_without_value(monkeypatch):
    assert '--key=value' in error(monkeypatch, '--compile')


def test_help_lists_keys(monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        configure(monkeypatch, '--help')
    assert e.value.code == 0 and '--batch_size=12' in capsys.readouterr().out


def test_train_and_sample_reject_typos():
    """The check is wired into the real scripts, before any work starts."""
    for script in ('train.py', 'sample.py'):
        r = run(sys.executable, script, '--max_iter=10')
        assert r.returncode != 0 and "unknown key 'max_iter'" in r.stderr, r.stderr
        assert 'Traceback' not in r.stderr


def test_file_hint_for_a_config_file_of_another_script(monkeypatch, tmp_path):
    cfg = tmp_path / 'c.py'
    cfg.write_text("batch_size = 64\nn_layer = 4\ndataset = 'owt'\n")
    monkeypatch.setattr(sys, 'argv', ['sample.py', str(cfg)])
    g = dict(dataset='stdlib', _file_hint="run with --dataset={dataset}")
    with pytest.raises(SystemExit) as e:
        exec(SOURCE, g)
    assert "sets keys this script does not take (batch_size, n_layer)" in str(e.value)
    assert str(e.value).endswith("run with --dataset=owt")   # formatted with the file's values
    assert "unknown key 'n_layer'" in error(monkeypatch, str(cfg))   # without a hint: the usual message


def test_sample_given_a_training_config_names_its_out_dir():
    r = run(sys.executable, 'sample.py', 'configs/default.py')
    assert r.returncode != 0 and r.stderr.strip().endswith('python sample.py --out_dir=out-default'), r.stderr
    assert 'Traceback' not in r.stderr


def test_explicit_keys_name_what_this_command_line_set(monkeypatch, tmp_path):
    # train.py's resume keeps these and takes every other setting from the checkpoint
    cfg = tmp_path / 'c.py'
    cfg.write_text("batch_size = 64\nlearning_rate = 6e-4\ncompile = False\n")  # only batch_size changes
    g = configure(monkeypatch, str(cfg), '--dataset=stdlib')  # a flag counts even at its default
    assert g['explicit_keys'] == {'batch_size', 'dataset'}
    assert configure(monkeypatch)['explicit_keys'] == set()
