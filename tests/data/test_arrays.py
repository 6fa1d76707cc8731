"""In-memory rows as a table: columns read as numbers or categories, subsets, a fingerprint that covers the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpsearch.data.arrays import column_names, from_frame, in_memory_summary, subset
from hpsearch.errors import DataError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "colour": ["red", "blue", None, "red", "blue", "red"],
            "count": [1, 2, 3, 4, 5, 6],
        }
    )


def test_a_frame_reads_numbers_and_categories_and_counts_the_inputs() -> None:
    data = from_frame(_frame(), np.array([0, 1, 0, 1, 0, 1]), ("a", "b"))
    assert data.table is not None
    assert data.table.columns.numeric == ("size", "count") and data.table.columns.categorical == ("colour",)
    assert data.n_features == 2 + 3  # two numbers; red, blue and (missing)
    assert data.x.dtype == np.float32 and np.isnan(data.x[2, 0])
    part = subset(data, np.array([0, 3, 5]))  # red alone
    assert part.table is not None and part.n_features == 3 and list(part.y) == [0, 1, 1]


def test_the_fingerprint_covers_the_rows_and_the_folds() -> None:
    data = from_frame(pd.DataFrame(np.eye(4), columns=column_names(4)), np.array([0, 1, 0, 1]), ("a", "b"))
    folds = [(np.array([0, 1]), np.array([2, 3])), (np.array([2, 3]), np.array([0, 1]))]
    found = in_memory_summary(data, folds)
    assert found["n_train"] == 4 and found["n_test"] == 0 and found["folds"] == 2
    assert in_memory_summary(data, folds)["fingerprint"] == found["fingerprint"]
    assert in_memory_summary(data, folds[::-1])["fingerprint"] != found["fingerprint"]
    other = from_frame(pd.DataFrame(2 * np.eye(4), columns=column_names(4)), data.y, data.classes)
    assert in_memory_summary(other, folds)["fingerprint"] != found["fingerprint"]


def test_a_column_of_one_text_value_is_refused_by_name() -> None:
    with pytest.raises(DataError, match="column 'colour' holds one value"):
        from_frame(_frame().assign(colour="red"), np.array([0, 1, 0, 1, 0, 1]), ("a", "b"))
