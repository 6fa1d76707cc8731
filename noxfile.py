"""Sessions: tests, lint, typecheck, docs, bench. Installs pin torch to the CPU wheel via constraints.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

INSTALL = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest options after --, e.g. -- -m 'not slow')."""
    session.install(*INSTALL, "-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def floors(session: nox.Session) -> None:
    """The suite's fast part on the lowest version of each dependency pyproject.toml states (downloads
    ~3 GB: PyPI's torch at the floor is a CUDA build, which runs on a CPU too)."""
    pins = session.create_tmp() + "/floors.txt"
    Path(pins).write_text("\n".join(_floors()) + "\n")
    session.install("-c", pins, "-e", ".[test]")
    session.run("python", "-c", "import importlib.metadata as m; print(*(f'{d}=={m.version(d)}' for d in "
                f"{[re.split('[=<>]', p)[0] for p in _floors()]!r}))")  # fmt: skip
    # old releases meet today's transitive dependencies (matplotlib 3.7 calls pyparsing 3.3's deprecated
    # names): their deprecation warnings are theirs, not hpsearch's, so they do not fail this session
    session.run("pytest", "-m", "not slow", "-W", "ignore::DeprecationWarning", *session.posargs)


def _floors() -> list[str]:
    """``name==low`` for each ``name>=low`` of the project's dependencies."""
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    found = (re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^]]*\])?>=([^,;\s]+)", d.strip()) for d in project["dependencies"])
    return [f"{m.group(1)}=={m.group(3)}" for m in found if m]


@nox.session
def gpu(session: nox.Session) -> None:
    """The GPU check (bench/gpu.py) on a machine with CUDA where pip reaches PyPI: torch's CUDA build."""
    session.install(*INSTALL, "-e", ".[export]")
    session.run("python", "-m", "bench.gpu", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check; import-linter keeps the package layers (pyproject.toml)."""
    session.install(*INSTALL, "ruff>=0.6", "import-linter>=2.0", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on hpsearch/ and tests/."""
    session.install(*INSTALL, "mypy>=1.10", "pandas-stubs", "-e", ".[test]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: the generated reference rewritten, then mkdocs build --strict (a warning fails)."""
    session.install(*INSTALL, "-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site")


@nox.session
def bench(session: nox.Session) -> None:
    """Training speed side by side (-- --quick: short); then, if asked, -- --trainers (the package's
    hand-written trainer vs autograd on one 5-fold trial), -- --workers (1 worker vs --jobs 2),
    -- --pruning[-trials=N] (median pruner vs none) and -- --race (none, median, race and the
    single-split reference, 2 seeds). -- --load [OPTIONS] runs only the load bench (many workers
    on one PostgreSQL study; OPTIONS go to python -m bench.load, e.g. --workers 1 4 --proxy --faults)."""
    if "--load" in session.posargs:
        session.install(*INSTALL, "-e", ".[postgres]", "grpcio", "protobuf")  # Optuna's gRPC proxy, for --proxy
        options = session.posargs[session.posargs.index("--load") + 1 :]
        session.run("python", "-m", "bench.load", *options)
        return
    session.install(*INSTALL, "-e", ".", "skorch")
    extra = ("--workers", "--trainers", "--race")
    studies = [a for a in session.posargs if a in extra or a.startswith("--pruning")]
    session.run("python", "-m", "bench.speed", *[a for a in session.posargs if a not in studies])
    if "--trainers" in studies:
        session.run("python", "-m", "bench.trainers")
    if "--race" in studies:
        session.run("python", "-m", "bench.race")
    if "--workers" in studies:
        session.run("python", "-m", "bench.workers")
    if pruning := [a for a in studies if a.startswith("--pruning")]:
        trials = [a.split("=", 1)[1] for a in pruning if a.startswith("--pruning-trials=")]
        session.run("python", "-m", "bench.pruning", *(["--trials", trials[0]] if trials else []))
