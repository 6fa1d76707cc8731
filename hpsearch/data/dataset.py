"""One split of a data set, and the fingerprint that proves two runs see the same rows."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

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
    groups: np.ndarray | None = None  # int64 group of each row ([data] groups); None: no groups

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
    """SHA-256 over the shapes and bytes of both splits, in row order, their groups where there are,
    and a table's text columns.

    An all-numeric table without text or groups hashes as before either was read (x and y alone).
    """
    h = hashlib.sha256()
    grouped = (train.groups, test.groups) if train.groups is not None and test.groups is not None else ()
    for a in (train.x, train.y, test.x, test.y, *grouped):
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
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> Loaded:
    """Both splits as contiguous float32 features and int64 labels (and int64 groups, when given)."""
    (x_tr, y_tr), (x_te, y_te) = train, test
    g_tr, g_te = (None, None) if groups is None else (_labels(groups[0]), _labels(groups[1]))
    return (
        Dataset(name, _features(x_tr), _labels(y_tr), classes, groups=g_tr),
        Dataset(name, _features(x_te), _labels(y_te), classes, groups=g_te),
        test_split,
    )


def hold_out_rows(
    name: str, y: np.ndarray, cfg: DataConfig, groups: np.ndarray | None = None, classes: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray, str]:
    """The training rows, the test rows and, in words, how a seeded hold-out of ``cfg.test_size`` cut them.

    Stratified by class; with ``groups`` (each row's group, from ``cfg.groups``), of whole groups:
    see ``_group_hold_out_rows``.

    Raises:
        DataError: a class has too few rows (or groups) to be in both splits.
    """
    if groups is not None:
        return _group_hold_out_rows(name, y, cfg, groups, classes)
    try:
        seed = derive(cfg.split_seed, "hold-out")
        rows: list[np.ndarray] = train_test_split(
            np.arange(len(y)), test_size=cfg.test_size, stratify=y, random_state=seed
        )
    except ValueError as e:
        raise DataError(f"{name}: cannot cut a stratified {cfg.test_size:.0%} test split: {e}") from None
    return rows[0], rows[1], f"hold-out {cfg.test_size:.0%}"


def _group_hold_out_rows(
    name: str, y: np.ndarray, cfg: DataConfig, groups: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, str]:
    """The test split as whole groups: one fold of ``StratifiedGroupKFold(round(1 / test_size))``,
    seeded from ``cfg.split_seed``, so every group's rows are on one side and the classes as
    evenly spread as the groups allow (about ``test_size`` of the rows: 1/5 for 0.2, 1/3 for 0.3).

    Raises:
        DataError: fewer groups than the hold-out cuts, or a class left out of either split.
    """
    parts, n_groups = max(2, round(1 / cfg.test_size)), len(np.unique(groups))
    column = repr(cfg.groups)
    if n_groups < parts:
        raise DataError(
            f"{name}: column {column} has {n_groups} groups; a {1 / parts:.0%} test split of whole groups "
            f"needs at least {parts}"
        )
    splitter = StratifiedGroupKFold(n_splits=parts, shuffle=True, random_state=derive(cfg.split_seed, "hold-out"))
    try:
        with warnings.catch_warnings():  # a class of fewer rows than parts: whether it is in both is checked below
            warnings.simplefilter("ignore", UserWarning)
            train_rows, test_rows = next(splitter.split(np.zeros(len(y)), y, groups))
    except ValueError as e:
        raise DataError(f"{name}: cannot cut a {1 / parts:.0%} test split of whole groups: {e}") from None
    for c in np.unique(y):
        for split, rows in (("training", train_rows), ("test", test_rows)):
            if not (y[rows] == c).any():
                held, label = len(np.unique(groups[y == c])), classes[c] if classes else str(c)
                raise DataError(
                    f"{name}: class {label!r} lies in {held} group{'s' * (held != 1)} of column {column}, and "
                    f"none of them fell into the {split} split; every class needs rows in both"
                )
    return train_rows, test_rows, f"hold-out {len(test_rows) / len(y):.0%}, whole groups of {cfg.groups}"


def hold_out(
    name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], cfg: DataConfig, groups: np.ndarray | None = None
) -> Loaded:
    """A stratified, seeded hold-out of ``cfg.test_size`` of the rows, for data without a test split
    (of whole groups, with ``groups``).

    Raises:
        DataError: a class has too few rows (or groups) to be in both splits.
    """
    train, test, words = hold_out_rows(name, y, cfg, groups, classes)
    parts = None if groups is None else (groups[train], groups[test])
    return pair(name, (x[train], y[train]), (x[test], y[test]), classes, words, parts)


def _features(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)
