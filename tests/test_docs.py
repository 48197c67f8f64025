"""The README and docs/LOG.md against the repo: every file, config, flag and mode they show exists,
the quick start stays the two commands that users and CI run, and the repo speaks of the software
only. Checked against the code's text (ast, regexes), never by importing or running the scripts;
the wording of the docs is free."""
import ast
import re
import shlex
import subprocess

import pytest

from conftest import REPO

DOCS = ['README.md', 'docs/LOG.md']
SCRIPTS = ['train.py', 'sample.py', 'bench.py']
PROCESS_WORDS = [re.compile(r'(?i)session \d'), re.compile(r'\bv\d[a-z]?\b'), re.compile(r'(?i)run\d'),
                 re.compile(r'(?i)stretch target'), re.compile(r'(?i)issue #?\d')]


def read(path):
    return (REPO / path).read_text()


def tracked_py_files():
    try:
        out = subprocess.run(['git', 'ls-files', '*.py'], cwd=REPO, capture_output=True, text=True, check=True).stdout
        files = out.split()
    except (OSError, subprocess.CalledProcessError):  # no git here: every .py file in the tree
        files = [str(p.relative_to(REPO)) for p in REPO.rglob('*.py') if '.git' not in p.parts]
    return [f for f in files if f != 'tests/test_docs.py' and (REPO / f).exists()]


def doc_paths(text):
    # `docs/...` in backticks and ![plot](docs/...) images; a trailing '*' is a glob over several files
    return set(re.findall(r'`(docs/[^`\s]+)`', text)) | set(re.findall(r'\]\((docs/[^)\s]+)\)', text))


def code_paths(text):
    # docs/... anywhere in a comment or string, but not after "<commit>:" (a path in git history)
    return {p.rstrip('.') for p in re.findall(r'(?<![\w:/.-])(docs/[\w./*-]*[\w/*])', text)}


def exists(path):
    return any(REPO.glob(path.rstrip('/')))


def test_docs_name_only_files_that_exist():
    missing = []
    for doc in DOCS:
        paths = doc_paths(read(doc))
        assert paths, f"{doc} names no docs/ paths: the pattern no longer matches how it cites files"
        missing += [f"{doc}: {p}" for p in sorted(paths) if not exists(p)]
    for f in tracked_py_files():
        missing += [f"{f}: {p}" for p in sorted(code_paths(read(f))) if not exists(p)]
    assert not missing, "paths named in the docs or the code that do not exist:\n" + "\n".join(missing)


def test_files_cited_by_commit_exist_in_that_commit():
    """`git show <commit>:<path>` and `git show <commit> --stat` cite what left the tree."""
    cites = set()
    for doc in DOCS:
        cites |= set(re.findall(r'git show ([0-9a-f]{7,40})(?::([^`\s]+)| --stat)', read(doc)))
    assert cites, "docs/LOG.md cites no removed file by commit: the pattern no longer matches"
    checked, missing = 0, []
    for commit, path in sorted(cites):
        have = subprocess.run(['git', 'cat-file', '-e', f'{commit}^{{commit}}'], cwd=REPO, capture_output=True)
        if have.returncode != 0:
            continue  # a shallow clone lacks the history; nothing to check it against
        checked += 1
        if path and subprocess.run(['git', 'cat-file', '-e', f'{commit}:{path}'], cwd=REPO).returncode != 0:
            missing.append(f'{commit}:{path}')
    if not checked:
        pytest.skip("none of the cited commits is in this clone's history")
    assert not missing, "files cited by commit that the commit does not hold:\n" + "\n".join(missing)


def quick_start():
    section = read('README.md').split('## Quick start', 1)[1]
    block = section.split('```sh', 1)[1].split('```', 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_two_commands():
    commands = quick_start()
    assert len(commands) == 2, commands
    assert commands[0].startswith('pip install') and 'python train.py configs/default.py' in commands[0]
    assert commands[1].startswith('pip install') and commands[1].endswith('python -m pytest -q tests')


def test_ci_runs_the_readme_test_command():
    command = quick_start()[1]
    ci = read('.ci/run')
    parts = [p.strip() for p in command.split('&&')]
    missing = [p for p in parts if p not in ci]
    assert command in ci or not missing, f".ci/run does not run the README's test command; missing: {missing}"


# --- flags, modes and configs the README shows ---------------------------------------------------

def settable_globals(script):
    """The names a script assigns at module level before it runs configurator.py: the keys that
    --key=value may set (configurator.py refuses any other)."""
    text = read(script)
    m = re.search(r"^\s*exec\(open\(.*configurator\.py", text, re.M)
    assert m, f"{script} no longer runs configurator.py the way this test expects"
    stop = text[:m.start()].count('\n') + 1
    names = set()

    def visit(body):
        for node in body:
            if node.lineno >= stop:
                return
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.If, ast.With, ast.Try, ast.For, ast.While)):
                for field in ('body', 'orelse', 'finalbody', 'handlers'):
                    visit(getattr(node, field, []))
            elif isinstance(node, ast.ExceptHandler):
                visit(node.body)
    visit(ast.parse(text).body)
    return {n for n in names if not n.startswith('_')}


def bench_modes():
    """Every string bench.py compares `mode` with (mode == 'x', mode in ('x', 'y'), mode in MODES)."""
    tree = ast.parse(read('bench.py'))
    tuples = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List, ast.Set)):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    tuples[t.id] = node.value

    def strings(node):
        node = tuples.get(node.id, node) if isinstance(node, ast.Name) else node
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        return set()
    modes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == 'mode':
            for c in node.comparators:
                modes |= strings(c)
    return modes


def readme_commands(text):
    """Shell commands the README shows: lines of ```sh blocks (with \\ continuations) and inline code."""
    commands = []
    for block in re.findall(r'```sh\n(.*?)```', text, re.S):
        commands += [line for line in block.replace('\\\n', ' ').splitlines() if line.strip()]
    prose = re.sub(r'```.*?```', '', text, flags=re.S)
    return commands, re.findall(r'`([^`\n]+)`', prose)


def script_flags(command):
    """(script, flag) for each --flag that follows train.py, sample.py or bench.py in a command."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    found, script = [], None
    for w in words:
        if w in ('&&', '||', '|', ';'):
            script = None
        elif w in SCRIPTS or any(w.endswith('/' + s) for s in SCRIPTS):
            script = w.rsplit('/', 1)[-1]
        elif script and w.startswith('--'):
            found.append((script, w[2:].split('=', 1)[0], w))
    return found


def test_readme_flags_modes_and_configs_exist():
    text = read('README.md')
    keys = {s: settable_globals(s) | {'help'} for s in SCRIPTS}
    modes = bench_modes()
    commands, inline = readme_commands(text)
    bad = []
    for command in commands + inline:
        for script, key, flag in script_flags(command):
            if key not in keys[script]:
                bad.append(f"{flag}: not a setting of {script} (in: {command})")
            if script == 'bench.py' and key == 'mode' and flag.split('=', 1)[1] not in modes:
                bad.append(f"{flag}: bench.py knows the modes {sorted(modes)}")
    # a flag alone in prose (`--fsdp=True`) belongs to whichever script has it, a data/*/prepare.py's too
    keys['prepare'] = {k for p in REPO.glob('data/*/prepare.py')
                       for k in re.findall(r"add_argument\('--(\w+)'", p.read_text())}
    for code in inline:
        if code.startswith('--') and not script_flags(code):
            for flag in code.split():
                key = flag[2:].split('=', 1)[0]
                if flag.startswith('--') and key != 'key' and not any(key in k for k in keys.values()):  # --key=value: any
                    bad.append(f"{flag}: no script has this setting")
    bad += [f"{c}: no such config" for c in sorted(set(re.findall(r'configs/[\w.-]+\.py', text)))
            if not (REPO / c).exists()]
    assert not bad, "the README shows what the code does not have:\n" + "\n".join(bad)
    assert {'layer', 'sweep', 'train', 'load'} <= modes, f"bench.py's modes were not found: {modes}"


def test_readme_is_short():
    n = len(read('README.md').splitlines())
    assert n < 320, f"README.md has {n} lines; keep it under 320 (details go in docs/LOG.md or the code)"


def test_no_process_words():
    hits = []
    for f in DOCS + tracked_py_files():
        for i, line in enumerate(read(f).splitlines(), 1):
            hits += [f"{f}:{i}: {line.strip()}" for rx in PROCESS_WORDS if rx.search(line)]
    assert not hits, ("words about how the work was done, not about the software (cite a date and a "
                      "command instead):\n" + "\n".join(hits))
