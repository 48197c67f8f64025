"""
Poor Man's Configurator, as in nanoGPT, but strict. Exec'd by train.py, sample.py and bench.py:

    exec(open('configurator.py').read())  # overrides the caller's globals from sys.argv

Arguments, applied in order:
    configs/default.py       a bare path: a python file whose assignments override the globals
    --batch_size=32          an override, parsed with ast.literal_eval (a plain word stays a str)
    --help                   prints the known keys with their current values and exits

Only keys the caller already defines can be set, and a value must keep the default's type (an
int may stand for a float). Anything else stops the run with a message saying how to fix it,
so a typo like --learning_rte=1e-3 can never pass silently. Names starting with '_' are private.
A caller may define _file_hint: a config file setting keys it does not know then stops with that
text, formatted with the file's values (sample.py: a training config names the run's out_dir).

explicit_keys, a set left in the caller's globals, names the keys this command line set: every
--key=value, and each key a config file changed (a file that assigns a key its current value
leaves it out). train.py's resume keeps these and takes every other setting from the checkpoint.
"""

import sys as _sys
import builtins as _builtins
import difflib as _difflib
from ast import literal_eval as _literal_eval
from types import ModuleType as _ModuleType

# the caller's config: every public global of a plain type; the defaults fix the types
_defaults = {k: v for k, v in globals().items()
             if not k.startswith('_') and isinstance(v, (bool, int, float, str, type(None)))}
explicit_keys = set()


def _check(_key, _val, _source):
    """Returns _val converted to the type of the default of _key, or stops with a clear message."""
    if _key not in _defaults:
        _close = _difflib.get_close_matches(_key, list(_defaults), n=3, cutoff=0.6)
        _hint = f" Did you mean {' or '.join(_close)}?" if _close else ""
        raise SystemExit(f"config error: unknown key '{_key}' (from {_source}).{_hint}\n"
                         f"Run with --help to list the known keys.")
    _default = _defaults[_key]
    if _default is None or type(_val) is type(_default):
        return _val
    if type(_default) is float and type(_val) is int:  # --learning_rate=1 means 1.0
        return float(_val)
    _want = type(_default).__name__
    _fix = {'str': f"--{_key}=some_text (or '--{_key}=\"...\"' if it looks like a number)",
            'bool': f"--{_key}=True or --{_key}=False",
            'int': f"--{_key}=8", 'float': f"--{_key}=3e-4"}[_want]
    raise SystemExit(f"config error: '{_key}' (from {_source}) must be {_want} like its default "
                     f"{_default!r}, got {type(_val).__name__} {_val!r}. Write it as {_fix}.")


for _arg in _sys.argv[1:]:
    if _arg in ('-h', '--help'):
        print("known config keys and their current values:")
        for _k in _defaults:
            print(f"  --{_k}={globals()[_k]!r}")
        raise SystemExit(0)
    if not _arg.startswith('--'):
        # a config file: run it in a namespace holding the known keys, then take what it set
        try:
            _src = open(_arg, encoding='utf-8').read()
        except (OSError, UnicodeDecodeError) as _e:
            raise SystemExit(f"config error: cannot read config file '{_arg}' as Python source "
                             f"({getattr(_e, 'strerror', None) or _e}). Pass a path such as configs/default.py, "
                             f"relative to where you run.")
        print(f"Overriding config with {_arg}:")
        print(_src)
        _ns = {_k: globals()[_k] for _k in _defaults}
        try:
            exec(_builtins.compile(_src, _arg, 'exec'), _ns)  # the caller may shadow compile()
        except Exception as _e:  # a typo in the file: say where, without the configurator's own frames
            _tb = _e.__traceback__
            while _tb is not None and _tb.tb_frame.f_code.co_filename != _arg:
                _tb = _tb.tb_next
            _line = _tb.tb_lineno if _tb is not None else getattr(_e, 'lineno', '?')
            raise SystemExit(f"config error: {_arg}, line {_line}: {type(_e).__name__}: {_e}")
        _set = {_k: _v for _k, _v in _ns.items()   # skipping imports and helpers, e.g. `import torch`
                if not (_k.startswith('_') or isinstance(_v, _ModuleType) or callable(_v))}
        _unknown = [_k for _k in _set if _k not in _defaults]
        if _unknown and '_file_hint' in globals():
            raise SystemExit(f"config error: {_arg} sets keys this script does not take "
                             f"({', '.join(_unknown[:3])}{', ...' if len(_unknown) > 3 else ''}). "
                             + _file_hint.format(**_set))
        for _k, _v in _set.items():
            _v = _check(_k, _v, _arg)
            if type(_v) is not type(globals()[_k]) or _v != globals()[_k]:
                explicit_keys.add(_k)
            globals()[_k] = _v
    else:
        if '=' not in _arg:
            raise SystemExit(f"config error: '{_arg}' has no value; write overrides as --key=value.")
        _k, _s = _arg[2:].split('=', 1)
        try:
            _v = _literal_eval(_s)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            _v = _s  # a plain word such as --device=cuda, or any text Python cannot read as a value, is a string
        print(f"Overriding: {_k} = {_v!r}")
        globals()[_k] = _check(_k, _v, f"--{_k}")
        explicit_keys.add(_k)
