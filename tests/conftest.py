"""Shared fixtures: a fixed seed, tiny real data, a small finished study, a PostgreSQL server."""

from __future__ import annotations

import itertools
import random
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.postgres import Postgres, Unavailable, throwaway
from hpsearch.cli import main
from hpsearch.data import Columns, Dataset, Table
from hpsearch.data.inputs import InputSpec


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test, restored after: for tests that train hundreds of tiny MLPs.

    A tiny model's products are too small to share among threads, and on a busy machine two threads
    wait on each other at every product: scikit-learn's estimator checks took 50 s with two threads
    on two loaded cores and 3 s with one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(*args: str | Path) -> int:
    """Run the hpsearch CLI in-process, as the console script does; return its exit code."""
    return main([str(a) for a in args])


def as_in_a_terminal() -> None:
    """A child's Ctrl-C as in a terminal (``preexec_fn``), even when this suite was started with
    SIGINT ignored (``nohup pytest &`` in a script), which a child inherits and hpsearch respects."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


STUDY_ARGS = ("--dataset", "digits", "--folds", "3", "--epochs", "1", "--quiet")


def as_table(data: Dataset) -> Dataset:
    """``data`` as a table file of numeric columns loads: imputed and standardized per fold, on training rows."""
    names = tuple(f"px{i}" for i in range(data.x.shape[1]))
    frame = pd.DataFrame(data.x.astype(np.float64), columns=list(names))
    return replace(data, table=Table(frame, Columns(numeric=names, categorical=()), n_inputs=len(names)))


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
    test_x: np.ndarray  # the test rows as the data set loads them (pixels scaled; a table's numeric columns, raw)
    test_y: np.ndarray


def final_tested(db: Path, folder: Path) -> FinalTested:
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
    return final_tested(folder / "study.db", folder / "final")


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
    return final_tested(db, folder / "final")


@pytest.fixture(scope="session")
def tested_penguins(tmp_path_factory: pytest.TempPathFactory) -> FinalTested:
    """A 3-trial study and its final test on palmerpenguins as it comes: two text columns, 19 missing values."""
    from palmerpenguins import load_penguins

    folder = tmp_path_factory.mktemp("tested-penguins")
    load_penguins().to_csv(folder / "penguins.csv", index=False)
    args = ("--data", folder / "penguins.csv", "--target", "species", "--folds", "3", "--epochs", "5", "--quiet")
    assert run_cli("study", *args, "--trials", "3", "--pruner", "none", "--storage", folder / "study.db") == 0
    return final_tested(folder / "study.db", folder / "final")


def penguin_rows(tested: FinalTested) -> pd.DataFrame:
    """The penguins study's test rows as a table holds them (text, NaN), with a number missing, a text
    missing and an island no training row had, in rows 0-2."""
    from hpsearch.data import load_split
    from hpsearch.store import load_study, stored_run

    defn, _ = stored_run(load_study(f"sqlite:///{tested.db}", None))
    _, test = load_split(defn.data)
    assert test.table is not None
    rows = test.table.frame.replace({"": np.nan})
    rows.loc[0, "bill_length_mm"] = np.nan
    rows.loc[1, "sex"] = np.nan
    rows.loc[2, "island"] = "Atlantis"
    return rows


def onnx_feeds(spec: InputSpec, rows: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
    """What an exported model takes: ``x`` (an image model), or each raw column by name (a table model:
    float, or string with "" where missing)."""
    if spec.feature_names is None:
        return {"x": np.asarray(rows, dtype=np.float32)}
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(spec.feature_names))
    return {
        name: (
            frame[name].fillna("").astype(str).to_numpy(dtype=object)
            if name in spec.categorical
            else frame[name].to_numpy(dtype=np.float32)
        ).reshape(-1, 1)
        for name in spec.feature_names
    }
