"""Rows held in memory (a notebook's numpy array or DataFrame, an outer fold of nested CV) -> a Dataset to search.

Every in-memory ``X`` is read as a table: a numpy array's columns are numbers named ``x0``, ``x1``, ...;
a DataFrame keeps its column names, and its text columns become categories (``table.decide``). So the
table's preprocessing (median imputation, standardizing, one-hot encoding) is fitted per fold on
training rows only, as for a table file, and raw features of very different scales (wine's) train as
well as pixels do. There is no test split here: the caller keeps its own rows apart (or nested CV's
outer fold does), so the fingerprint covers the rows and the folds the study is scored on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from hpsearch.config import IN_MEMORY, DataConfig
from hpsearch.data.dataset import Dataset, summary
from hpsearch.data.table import Table, count_inputs, decide, digest, typed

NO_TEST_SPLIT = "none: the caller keeps its own test rows"  # what an in-memory study records as its test split


def column_names(n: int) -> list[str]:
    """The names of a numpy array's ``n`` columns as a table: ``x0`` .. ``x{n-1}``."""
    return [f"x{i}" for i in range(n)]


def from_frame(
    frame: pd.DataFrame,
    y: np.ndarray,
    classes: tuple[str, ...],
    *,
    groups: np.ndarray | None = None,
    name: str = IN_MEMORY,
    max_categories: int = DataConfig().max_categories,
) -> Dataset:
    """The Dataset of a table held in memory: every row is a training row.

    Args:
        frame: the feature columns (string names), raw: numbers, text, missing values.
        y: int64 class indices 0..C-1 of each row.
        classes: the name of class i.
        groups: each row's group (any hashable values), kept together in every fold; None: none.
        name: the data set's name in messages and in the study.
        max_categories: a text column of more categories is refused (``[data] max_categories``).

    Raises:
        DataError: a column unfit to be a feature (empty, one text value, an identifier, too many
            categories, text in a column of numbers), as for a table file.
    """
    columns = decide(frame, DataConfig(dataset=IN_MEMORY, max_categories=max_categories), name)
    rows = typed(frame, columns, name)
    text = rows[list(columns.categorical)]
    table = Table(rows, columns, count_inputs(rows, columns), digest(text) if text.shape[1] else b"")
    x = np.ascontiguousarray(rows[list(columns.numeric)].to_numpy(dtype=np.float32))
    codes = None if groups is None else np.asarray(pd.factorize(np.asarray(groups))[0], dtype=np.int64)
    return Dataset(name, x, np.ascontiguousarray(y, dtype=np.int64), classes, table, codes)


def subset(data: Dataset, rows: np.ndarray, name: str | None = None) -> Dataset:
    """Rows ``rows`` of ``data`` as a Dataset of their own (nested CV's outer training or test rows).

    A table keeps how its columns are read; its inputs are counted on these rows, as a training split's are.
    """
    table = data.table
    if table is not None:
        frame = table.frame.iloc[rows].reset_index(drop=True)
        text = frame[list(table.columns.categorical)]
        table = replace(
            table,
            frame=frame,
            n_inputs=count_inputs(frame, table.columns),
            text_digest=digest(text) if text.shape[1] else b"",
        )
    groups = None if data.groups is None else data.groups[rows]
    return Dataset(name or data.name, data.x[rows], data.y[rows], data.classes, table, groups)


def in_memory_summary(
    train: Dataset, splits: Sequence[tuple[np.ndarray, np.ndarray]], test_split: str = NO_TEST_SPLIT
) -> dict[str, Any]:
    """What a study of in-memory rows records about its data: ``data.summary`` of the rows with no test
    split (``test_split`` says where the test rows are), its fingerprint extended by the folds, so a study
    resumed on other rows or folds is refused."""
    groups = None if train.groups is None else train.groups[:0]
    none = Dataset(train.name, train.x[:0], train.y[:0], train.classes, groups=groups)
    found = summary(train, none, test_split)
    h = hashlib.sha256(found["fingerprint"].encode())
    for fit_rows, val_rows in splits:
        for part in (fit_rows, val_rows):
            h.update(np.asarray(part, dtype=np.int64).tobytes())
            h.update(b"|")
    return found | {"fingerprint": h.hexdigest(), "folds": len(splits)}
