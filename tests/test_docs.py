"""The README and docs/PERF.md point at logs, plots and JSON in docs/ for every number they quote;
results get moved between versions (docs/results/v2/, v3/), so check that every path they name
exists, and that the README's quick start stays the two commands the CI and users rely on."""
import re

from conftest import REPO

DOCS = ['README.md', 'docs/PERF.md']


def named_paths(text):
    # `docs/...` in backticks and ![plot](docs/...) images; a trailing '*' is a glob over several files
    return set(re.findall(r'`(docs/[^`\s]+)`', text)) | set(re.findall(r'\]\((docs/[^)\s]+)\)', text))


def test_docs_name_only_files_that_exist():
    missing = []
    for doc in DOCS:
        paths = named_paths((REPO / doc).read_text())
        assert paths, f"{doc} names no docs/ paths: the pattern no longer matches how it cites files"
        missing += [f"{doc}: {p}" for p in sorted(paths) if not any(REPO.glob(p.rstrip('/')))]
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_readme_quick_start_is_two_commands():
    text = (REPO / 'README.md').read_text()
    section = text.split('## Quick start', 1)[1]
    block = section.split('```sh', 1)[1].split('```', 1)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    assert commands[0].startswith('pip install') and 'python train.py configs/default.py' in commands[0]
    assert commands[1].startswith('pip install') and commands[1].endswith('python -m pytest -q tests')
    # .ci/run must call the same test command as the README's second line
    assert 'python -m pytest -q tests' in (REPO / '.ci/run').read_text()
