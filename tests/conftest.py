"""Shared fixtures: a fixed seed, tiny real data, and a small finished study."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

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


STUDY_ARGS = ("--dataset", "digits", "--folds", "3", "--epochs", "1", "--quiet")


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished 4-trial, 3-fold, 1-epoch study on digits: (SQLite file, study name).

    Read it; do not add trials (copy the file first if a test must change it).
    """
    db = tmp_path_factory.mktemp("small-study") / "study.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "4", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    return db, "digits"
