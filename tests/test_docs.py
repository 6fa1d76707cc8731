"""Documentation that cannot drift: the generated reference is the code's, and every runnable example runs.

A fenced block on the line right after ``<!-- runnable -->`` in README.md or docs/ is run, page by
page, each page in a fresh temporary folder and in a process of its own (pages side by side):
``bash`` blocks by bash (``set -euo pipefail``, this environment's ``hpsearch`` first on PATH),
``python`` blocks in one namespace per page, all in the order they appear. The blocks marked so
are those that run in seconds on ``digits``; long runs (Fashion-MNIST, benchmarks) are shown with
the command and date that made them and are not marked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

import hpsearch
from hpsearch.cli import app
from hpsearch.store import schema

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"^<!-- runnable -->\n```(bash|python)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
PAGES = sorted(p for p in [ROOT / "README.md", *DOCS.rglob("*.md")] if RUNNABLE.search(p.read_text(encoding="utf-8")))

# The page's blocks, run by a process of their own: bash blocks by bash, python blocks in one namespace
_DRIVER = """
import json, subprocess, sys
namespace = {"__name__": "__main__"}
for n, (kind, code) in enumerate(json.load(open(sys.argv[1], encoding="utf-8")), 1):
    print(f"--- block {n} ({kind})", flush=True)
    if kind == "python":
        exec(compile(code, f"block {n}", "exec"), namespace)
    else:
        subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True)
"""


def _generate() -> ModuleType:
    """docs/generate.py, which is no package module."""
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> dict[str, Any]:
    """Every command of the app by name, and the app itself as ``""`` (its --version)."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    context = group.make_context("hpsearch", [], resilient_parsing=True)
    found = {name: group.get_command(context, name) for name in group.list_commands(context)}
    return {name: command for name, command in found.items() if command is not None} | {"": group}


def test_the_committed_generated_pages_are_what_the_code_and_readme_make() -> None:
    made: dict[Path, str] = _generate().pages()
    assert {p.relative_to(DOCS).as_posix() for p in made} == {"index.md", "reference/cli.md", "reference/definition.md"}
    for path, text in made.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} differs: run python docs/generate.py"


def test_every_option_of_every_command_is_named_in_the_docs() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    commands = _commands()
    assert len(commands) >= 8
    for name, command in commands.items():
        if name:
            assert f"hpsearch {name}" in text, f"hpsearch {name}"
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert re.search(rf"`[^`\n]*(?<![\w-]){re.escape(opt)}(?![\w-])", text), f"hpsearch {name} {opt}"


def test_every_definition_field_and_domain_is_in_the_definition_reference() -> None:
    from hpsearch.config import DOMAINS

    page = (DOCS / "reference" / "definition.md").read_text(encoding="utf-8")
    for key, domain in DOMAINS.items():
        field = key.rsplit(".", 1)[-1]
        assert re.search(rf"^\| `{re.escape(field)}` \| [^|]* \| {re.escape(domain.describe())}", page, re.M), key


def test_what_the_study_stores_is_named_in_the_stored_reference() -> None:
    page = (DOCS / "reference" / "stored.md").read_text(encoding="utf-8")
    names = [v for k, v in vars(schema).items() if k.startswith(("STUDY_", "TRIAL_")) and isinstance(v, str)]
    assert len(names) >= 12
    for name in names:
        assert f"`{name}`" in page, name


def test_the_version_is_pyprojects_and_in_the_changelog() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert hpsearch.__version__ == version
    assert f"## [{version}] - " in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    # the README's test command is the one CI runs
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt nox && .venv/bin/nox -s tests"
    assert command in readme and command in ci
    for target in re.findall(r"\]\(((?:docs/)?[\w/.-]+\.(?:md|png))\)", readme):
        assert (ROOT / target).is_file(), target


def _run_page(page: Path, folder: Path) -> tuple[int, str, float]:
    """Run the runnable blocks of ``page`` in ``folder``; the exit status, the output and the seconds it took."""
    start = time.perf_counter()
    blocks = RUNNABLE.findall(page.read_text(encoding="utf-8"))
    (folder / ".blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = os.environ | {"PATH": path, "COLUMNS": "100", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, ".blocks.json"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout[-3000:] + done.stderr[-3000:], time.perf_counter() - start


@pytest.mark.slow
def test_the_runnable_examples_run(tmp_path: Path) -> None:
    # the pages of most blocks first, so that the longest do not start last
    pages = sorted(PAGES, key=lambda p: -len(RUNNABLE.findall(p.read_text(encoding="utf-8"))))
    counts = {p.relative_to(ROOT).as_posix(): len(RUNNABLE.findall(p.read_text(encoding="utf-8"))) for p in pages}
    blocks = sum(counts.values())
    assert blocks >= 10, counts  # 10 when written: tutorial 4, use-model 2, own-table 2, time-budget, final-model
    folders = [tmp_path / str(n) for n in range(len(pages))]
    for folder in folders:
        folder.mkdir()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(len(pages), os.cpu_count() or 1)) as pool:
        results = list(pool.map(_run_page, pages, folders))
    took = ", ".join(f"{name} {n} in {s:.0f} s" for (name, n), (_, _, s) in zip(counts.items(), results, strict=True))
    print(f"ran {blocks} runnable blocks of {len(pages)} pages in {time.perf_counter() - start:.0f} s: {took}")
    failed = {name: out for name, (code, out, _) in zip(counts, results, strict=True) if code != 0}
    assert not failed, "\n\n".join(f"{name}:\n{out}" for name, out in failed.items())
