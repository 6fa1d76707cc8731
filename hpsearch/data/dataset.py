"""One split of a data set, and the fingerprint that proves two runs see the same rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from hpsearch.config import DataConfig, derive
from hpsearch.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a classification data set: float32 features, int64 labels and their names.

    The training split and the test split are two Datasets; the search only ever holds the first.
    """

    name: str
    x: np.ndarray  # float32, (n, n_features); pixels scaled to [0, 1]
    y: np.ndarray  # int64 class indices 0..C-1, (n,)
    classes: tuple[str, ...]  # label of class index i
    standardize: bool = False  # tables: scale features, with a scaler fitted on training rows only

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.y)


def fingerprint(train: Dataset, test: Dataset) -> str:
    """SHA-256 over the shapes and bytes of both splits, in row order."""
    h = hashlib.sha256()
    for a in (train.x, train.y, test.x, test.y):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def summary(train: Dataset, test: Dataset, test_split: str) -> dict[str, Any]:
    """What a study records about its data (JSON-ready), with the fingerprint of both splits."""
    return {
        "name": train.name,
        "n_train": len(train),
        "n_test": len(test),
        "n_features": train.n_features,
        "n_classes": train.n_classes,
        "classes": list(train.classes),
        "test_split": test_split,
        "fingerprint": fingerprint(train, test),
    }


Loaded = tuple[Dataset, Dataset, str]  # the training split, the test split, how the test split was cut


def pair(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: tuple[str, ...],
    test_split: str,
    standardize: bool = False,
) -> Loaded:
    """Both splits as contiguous float32 features and int64 labels."""
    (x_tr, y_tr), (x_te, y_te) = train, test
    return (
        Dataset(name, _features(x_tr), _labels(y_tr), classes, standardize),
        Dataset(name, _features(x_te), _labels(y_te), classes, standardize),
        test_split,
    )


def hold_out(
    name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], cfg: DataConfig, standardize: bool = False
) -> Loaded:
    """A stratified, seeded hold-out of ``cfg.test_size`` of the rows, for data without a test split.

    Raises:
        DataError: a class has too few rows to be in both splits.
    """
    try:
        seed = derive(cfg.split_seed, "hold-out")
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=cfg.test_size, stratify=y, random_state=seed)
    except ValueError as e:
        raise DataError(f"{name}: cannot cut a stratified {cfg.test_size:.0%} test split: {e}") from None
    return pair(name, (x_tr, y_tr), (x_te, y_te), classes, f"hold-out {cfg.test_size:.0%}", standardize)


def _features(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)
