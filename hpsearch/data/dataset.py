"""One split of a data set, and the fingerprint that proves two runs see the same rows."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import train_test_split

from hpsearch.config import DataConfig, derive
from hpsearch.errors import DataError

if TYPE_CHECKING:
    from hpsearch.data.table import Table


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a classification data set: float32 features, int64 labels and their names.

    The training split and the test split are two Datasets; the search only ever holds the first.
    """

    name: str
    # float32 (n, columns): pixels scaled to [0, 1]; for a table, the file's numeric columns as read
    # (NaN where missing), which the fingerprint covers: the model reads ``table``
    x: np.ndarray
    y: np.ndarray  # int64 class indices 0..C-1, (n,)
    classes: tuple[str, ...]  # label of class index i
    # a table's feature columns, typed, and what decides its preprocessing (fitted per fold on
    # training rows only: data.preprocess); None: x is the model's input as it is
    table: Table | None = None

    @property
    def n_features(self) -> int:
        """The model's inputs: a table's after its preprocessing (one per category), else x's columns."""
        return self.table.n_inputs if self.table is not None else int(self.x.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.y)


def fingerprint(train: Dataset, test: Dataset) -> str:
    """SHA-256 over the shapes and bytes of both splits, in row order, and a table's text columns.

    An all-numeric table without text hashes as before text columns were read (x and y alone).
    """
    h = hashlib.sha256()
    for a in (train.x, train.y, test.x, test.y):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    for part in (train, test):
        if part.table is not None:
            h.update(part.table.text_digest)
    return h.hexdigest()


def summary(train: Dataset, test: Dataset, test_split: str) -> dict[str, Any]:
    """What a study records about its data (JSON-ready), with the fingerprint of both splits, and
    how a table's columns are read (decided from its training split)."""
    found = {
        "name": train.name,
        "n_train": len(train),
        "n_test": len(test),
        "n_features": train.n_features,
        "n_classes": train.n_classes,
        "classes": list(train.classes),
        "test_split": test_split,
        "fingerprint": fingerprint(train, test),
    }
    if train.table is not None:
        found["columns"] = train.table.columns.to_dict()
    return found


def changed_columns(stored: Mapping[str, Any], found: Mapping[str, Any]) -> str | None:
    """How a table's columns, as the data summary ``found`` reads them now, differ from those of the
    summary ``stored`` with a study (None: the same, or either is not a table's)."""
    if "columns" not in stored or "columns" not in found:
        return None
    was = {name: kind for kind, names in stored["columns"].items() for name in names}
    now = {name: kind for kind, names in found["columns"].items() for name in names}
    parts = [f"column {n!r} is gone" for n in was if n not in now]
    parts += [f"column {n!r} is new" for n in now if n not in was]
    parts += [f"column {n!r} reads as {now[n]}, not {was[n]}" for n in was if n in now and now[n] != was[n]]
    return ", ".join(parts[:4]) or None


Loaded = tuple[Dataset, Dataset, str]  # the training split, the test split, how the test split was cut


def pair(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: tuple[str, ...],
    test_split: str,
) -> Loaded:
    """Both splits as contiguous float32 features and int64 labels."""
    (x_tr, y_tr), (x_te, y_te) = train, test
    return (
        Dataset(name, _features(x_tr), _labels(y_tr), classes),
        Dataset(name, _features(x_te), _labels(y_te), classes),
        test_split,
    )


def hold_out_rows(name: str, y: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The training rows and the test rows of a stratified, seeded hold-out of ``cfg.test_size``.

    Raises:
        DataError: a class has too few rows to be in both splits.
    """
    try:
        seed = derive(cfg.split_seed, "hold-out")
        rows: list[np.ndarray] = train_test_split(
            np.arange(len(y)), test_size=cfg.test_size, stratify=y, random_state=seed
        )
    except ValueError as e:
        raise DataError(f"{name}: cannot cut a stratified {cfg.test_size:.0%} test split: {e}") from None
    return rows[0], rows[1]


def hold_out(name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], cfg: DataConfig) -> Loaded:
    """A stratified, seeded hold-out of ``cfg.test_size`` of the rows, for data without a test split.

    Raises:
        DataError: a class has too few rows to be in both splits.
    """
    train, test = hold_out_rows(name, y, cfg)
    return pair(name, (x[train], y[train]), (x[test], y[test]), classes, f"hold-out {cfg.test_size:.0%}")


def _features(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)
