"""Tables as they come: column kinds decided from the training split, overrides, the fingerprint of raw rows,
and scikit-learn's bundled tables as numeric ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split

from hpsearch.config import CVConfig, DataConfig, TrainConfig, derive
from hpsearch.data import fingerprint, load_split, load_training
from hpsearch.training import cross_validate, make_splits

SIZES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _penguins(tmp_path: Path, frame: pd.DataFrame | None = None, **data: object) -> DataConfig:
    path = tmp_path / "penguins.csv"
    (load_penguins() if frame is None else frame).to_csv(path, index=False)
    return DataConfig(dataset="table", path=str(path), target="species", **data)  # type: ignore[arg-type]


def test_penguins_read_text_as_categories_and_keep_missing_values(tmp_path: Path) -> None:
    train, summary = load_training(_penguins(tmp_path))
    assert train.table is not None
    assert summary["columns"] == {"numeric": [*SIZES, "year"], "categorical": ["island", "sex"]}
    assert summary["n_features"] == train.n_features == 5 + 3 + 3  # 3 islands; female, male, (missing)
    frame = train.table.frame
    assert frame[SIZES].isna().any(axis=None) and (frame["sex"] == "").any()  # missing, not dropped
    assert len(frame) == summary["n_train"] == 275


def test_the_definition_overrides_the_kinds_and_drops_columns(tmp_path: Path) -> None:
    train, summary = load_training(_penguins(tmp_path, categorical=("year",), drop=("sex",)))
    assert summary["columns"] == {"numeric": SIZES, "categorical": ["island", "year"]}
    assert train.n_features == 4 + 3 + 3  # three islands, three years
    frame = load_penguins().astype({"bill_depth_mm": str})  # numbers in a text column: read as numbers
    numbers, _ = load_training(_penguins(tmp_path, frame, numeric=("bill_depth_mm",)))
    assert numbers.table is not None and numbers.table.frame["bill_depth_mm"].dtype == np.float64


def test_only_the_training_split_decides_categories(tmp_path: Path) -> None:
    penguins = load_penguins()
    train, test = load_split(_penguins(tmp_path))
    assert test.table is not None
    seed = derive(0, "hold-out")
    _, test_rows = train_test_split(np.arange(len(penguins)), test_size=0.2, stratify=penguins["species"],
                                    random_state=seed)  # fmt: skip
    penguins.loc[test_rows, "island"] = "Atlantis"  # an island the training rows never saw
    other_train, other_test = load_split(_penguins(tmp_path, penguins))
    assert other_train.n_features == train.n_features  # no input for it
    assert other_test.table is not None and set(other_test.table.frame["island"]) == {"Atlantis"}
    assert fingerprint(other_train, other_test) != fingerprint(train, test)  # the raw rows differ


def test_the_fingerprint_covers_text_and_missing_values(tmp_path: Path) -> None:
    base = fingerprint(*load_split(_penguins(tmp_path)))
    assert fingerprint(*load_split(_penguins(tmp_path))) == base  # deterministic
    # a text changed, a text filled in, a missing number filled in (penguins row 3 has no sizes, no sex)
    for row, column, value in ((0, "island", "Biscoe"), (3, "sex", "female"), (3, "bill_length_mm", 40.0)):
        penguins = load_penguins()
        penguins.loc[row, column] = value
        assert fingerprint(*load_split(_penguins(tmp_path, penguins))) != base, (row, column)


def test_a_numeric_table_fingerprints_as_before_text_columns_were_read(tmp_path: Path) -> None:
    # the formula of the studies stored before: SHA-256 of both splits' float32 features and int64
    # labels, the hold-out cut from the whole feature matrix; those studies must still match
    wine = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "wine.csv", index=False)
    x, y = wine.drop(columns="target").to_numpy(np.float64), wine["target"].to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=derive(0, "hold-out"))
    h = hashlib.sha256()
    for a in (x_tr.astype(np.float32), y_tr.astype(np.int64), x_te.astype(np.float32), y_te.astype(np.int64)):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    _, summary = load_training(DataConfig(dataset="table", path=str(tmp_path / "wine.csv"), target="target"))
    assert summary["fingerprint"] == h.hexdigest()


@pytest.mark.parametrize(("load", "n_features"), [(load_breast_cancer, 30), (load_wine, 13)])
def test_scikit_learns_tables_are_numeric_ones_and_learnable(tmp_path: Path, load: object, n_features: int) -> None:
    frame = load(as_frame=True).frame  # type: ignore[operator]
    frame.to_parquet(tmp_path / "t.parquet")
    train, summary = load_training(DataConfig(dataset="table", path=str(tmp_path / "t.parquet"), target="target"))
    assert summary["columns"]["categorical"] == [] and train.n_features == n_features
    splits = make_splits(train.y, CVConfig(folds=3))
    result = cross_validate(train, splits, TrainConfig(depth=1, width=32, epochs=10, lr=1e-2))
    assert result.mean["accuracy"] > 0.9  # standardized per fold, a small MLP learns either
