"""A table's preprocessing: scikit-learn's ColumnTransformer fitted on the given rows only, padded per fold,
stored as numbers and names and rebuilt to transform as the fitted one did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from palmerpenguins import load_penguins

from hpsearch.config import DataConfig
from hpsearch.data import Columns, Table, load_training, preprocess
from hpsearch.data.preprocess import Fitted
from hpsearch.data.table import typed


def _table(frame: pd.DataFrame, columns: Columns) -> Table:
    typed_frame = typed(frame, columns, "t")
    n = len(columns.numeric) + sum(typed_frame[c].replace("", "(missing)").nunique() for c in columns.categorical)
    return Table(typed_frame, columns, n)


def test_the_stored_preprocessing_transforms_as_the_fitted_one(tmp_path: Path) -> None:
    load_penguins().to_csv(tmp_path / "penguins.csv", index=False)
    train, _ = load_training(DataConfig(dataset="table", path=str(tmp_path / "penguins.csv"), target="species"))
    assert train.table is not None
    fitted = preprocess.fit(train.table)
    stored = Fitted.from_dict(json.loads(json.dumps(Fitted.of(fitted, train.table.columns).to_dict())))
    rows = train.table.frame.iloc[:6].copy()
    rows.loc[0, "bill_length_mm"], rows.loc[1, "sex"], rows.loc[2, "island"] = np.nan, "", "Atlantis"
    shift, scale, offset = stored.affine()
    rebuilt = (stored.frozen().transform(rows).astype(np.float32) - shift) / scale - offset
    expected = fitted.transform(rows)
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-6, atol=1e-6)
    islands = [i for i, name in enumerate(fitted.get_feature_names_out()) if "island" in name]
    assert (expected[2, islands] == 0).all()  # an unseen island: every island input 0
    assert stored.categories[1] == ("(missing)", "female", "male")  # a missing sex is a category of its own


def test_each_fit_sees_its_rows_alone_and_a_fold_without_a_category_is_padded() -> None:
    frame = pd.DataFrame({"size": [1.0, np.nan, 3.0, 10.0], "colour": ["red", "blue", "red", "green"]})
    table = _table(frame, Columns(numeric=("size",), categorical=("colour",)))
    assert table.n_inputs == 1 + 3
    fitted = preprocess.fit(table, np.array([0, 1, 2]))  # green only in row 3
    assert fitted.named_transformers_["numeric"]["impute"].statistics_.tolist() == [2.0]  # median of 1 and 3
    inputs = preprocess.inputs(fitted, table)
    assert inputs.shape == (4, 4) and (inputs[:, 3] == 0).all()  # the padding
    np.testing.assert_array_equal(inputs[3, 1:], [0, 0, 0])  # green, unseen by this fit: all zeros
