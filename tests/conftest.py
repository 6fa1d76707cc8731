"""Shared fixtures: a fixed seed, tiny real data, a small finished study, a PostgreSQL server."""

from __future__ import annotations

import itertools
import random
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.postgres import Postgres, Unavailable, throwaway
from hpsearch.cli import main


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def run_cli(*args: str | Path) -> int:
    """Run the hpsearch CLI in-process, as the console script does; return its exit code."""
    return main([str(a) for a in args])


def as_in_a_terminal() -> None:
    """A child's Ctrl-C as in a terminal (``preexec_fn``), even when this suite was started with
    SIGINT ignored (``nohup pytest &`` in a script), which a child inherits and hpsearch respects."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


STUDY_ARGS = ("--dataset", "digits", "--folds", "3", "--epochs", "1", "--quiet")


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished 4-trial, 3-fold, 1-epoch study on digits: (SQLite file, study name).

    Read it; do not add trials (copy the file first if a test must change it).
    """
    db = tmp_path_factory.mktemp("small-study") / "study.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "4", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    return db, "digits"


# --- a PostgreSQL server of the tests' own, where Debian's postgresql is installed ----------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server started for this session (skips the test where none is installed)."""
    try:
        with throwaway() as server:
            yield server
    except Unavailable as e:
        pytest.skip(str(e))


FULL_SLOTS = 3  # connections a full_postgres server leaves to a role that is not a superuser


@pytest.fixture(scope="session")
def full_postgres() -> Iterator[Postgres]:
    """A second server, with max_connections 6: three slots for the workers' role (the server keeps
    three for superusers), fewer than four workers would hold at once."""
    try:
        with throwaway(f"max_connections={FULL_SLOTS + 3}") as server:
            yield server
    except Unavailable as e:
        pytest.skip(str(e))


_DATABASES = itertools.count()


@pytest.fixture
def postgres_url(postgres: Postgres, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database on the session's server."""
    name = f"t{next(_DATABASES)}_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    postgres.createdb(name)
    return postgres.url(name)


# --- final-tested studies: a digits model and a table model, with their test rows ------------


@dataclass(frozen=True)
class FinalTested:
    """A study that final-test has run on, and what it wrote."""

    db: Path
    folder: Path  # final-test's folder: model.safetensors, final_test.json, ...
    test_x: np.ndarray  # the test rows as the data set loads them (pixels scaled, table unscaled)
    test_y: np.ndarray


def _final_tested(db: Path, folder: Path) -> FinalTested:
    from hpsearch.data import load_split
    from hpsearch.store import load_study, stored_run

    assert run_cli("final-test", "best", "--storage", db, "--out", folder) == 0
    defn, _ = stored_run(load_study(f"sqlite:///{db}", None))
    _, test = load_split(defn.data)
    return FinalTested(db, folder, test.x, test.y)


@pytest.fixture(scope="session")
def tested_digits(small_study: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> FinalTested:
    """final-test best on a copy of the small digits study."""
    folder = tmp_path_factory.mktemp("tested-digits")
    shutil.copy(small_study[0], folder / "study.db")
    return _final_tested(folder / "study.db", folder / "final")


@pytest.fixture(scope="session")
def tested_table(tmp_path_factory: pytest.TempPathFactory) -> FinalTested:
    """A 2-trial study and its final test on digits as a CSV table: 64 named features, string labels."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("tested-table")
    digits = load_digits()
    frame = {f"px{i}": digits.data[:, i] for i in range(64)}
    import pandas as pd

    table = pd.DataFrame(frame).assign(kind=[f"digit-{d}" for d in digits.target])
    table.to_csv(folder / "shapes.csv", index=False)
    db = folder / "study.db"
    args = ("--data", folder / "shapes.csv", "--target", "kind", "--folds", "3", "--epochs", "2", "--quiet")
    assert run_cli("study", *args, "--trials", "2", "--pruner", "none", "--storage", db) == 0
    return _final_tested(db, folder / "final")
