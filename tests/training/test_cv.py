"""K-fold splits and per-fold scoring on the training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from palmerpenguins import load_penguins
from sklearn.preprocessing import StandardScaler

from hpsearch.config import CVConfig, DataConfig, TrainConfig, metric_names
from hpsearch.data import Dataset, load_training
from hpsearch.errors import ConfigError
from hpsearch.training import as_tensors, evaluate, fit, steps_per_epoch
from hpsearch.training.cv import _fold_tensors, cross_validate, make_splits
from tests.conftest import as_table


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_training(DataConfig(dataset="digits"))[0]


def test_folds_are_disjoint_cover_the_training_rows_and_are_stratified(digits: Dataset) -> None:
    splits = make_splits(digits.y, CVConfig(folds=5, seed=3))
    validation = np.concatenate([val for _, val in splits])
    assert sorted(validation.tolist()) == list(range(len(digits.y)))  # each row validated exactly once
    for train, val in splits:
        assert not set(train) & set(val)
        assert len(train) + len(val) == len(digits.y)
        expected = np.bincount(digits.y) / 5
        assert np.abs(np.bincount(digits.y[val], minlength=10) - expected).max() <= 1


def test_same_seed_same_folds_other_seed_other_folds(digits: Dataset) -> None:
    a = make_splits(digits.y, CVConfig(folds=3, seed=0))
    b = make_splits(digits.y, CVConfig(folds=3, seed=0))
    c = make_splits(digits.y, CVConfig(folds=3, seed=1))
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0][1], c[0][1])


def test_repeats_add_differently_shuffled_k_fold_splits_after_the_first(digits: Dataset) -> None:
    once = make_splits(digits.y, CVConfig(folds=3, seed=4))
    twice = make_splits(digits.y, CVConfig(folds=3, seed=4, repeats=2))
    assert len(twice) == 6
    for (a_train, a_val), (b_train, b_val) in zip(once, twice[:3], strict=True):  # repeat 1 is the plain split
        assert np.array_equal(a_train, b_train) and np.array_equal(a_val, b_val)
    second = twice[3:]
    assert sorted(np.concatenate([val for _, val in second]).tolist()) == list(range(len(digits.y)))
    assert not any(np.array_equal(a[1], b[1]) for a, b in zip(once, second, strict=True))


def test_k_larger_than_the_smallest_class_is_refused() -> None:
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ConfigError, match=r"smallest class \('b': 3 training rows\)"):
        make_splits(y, CVConfig(folds=4), classes=("a", "b"))


def test_cross_validate_scores_every_fold(digits: Dataset) -> None:
    splits = make_splits(digits.y, CVConfig(folds=3))
    result = cross_validate(digits, splits, TrainConfig(depth=1, width=32, epochs=2, lr=1e-2))
    assert len(result.folds) == 3
    names = ("loss", *metric_names(10))  # ten classes: no ROC AUC
    for figures in result.folds:
        assert set(figures) == set(names)
        assert 0.5 < figures["accuracy"] <= 1.0 and figures["loss"] > 0
    for name in names:
        values = [f[name] for f in result.folds]
        assert result.mean[name] == pytest.approx(np.mean(values))
        assert result.std[name] == pytest.approx(np.std(values, ddof=1))


def test_a_table_is_scaled_in_each_fold_by_its_own_training_rows(digits: Dataset) -> None:
    table = as_table(digits)  # as a table file of numbers is loaded
    splits = make_splits(table.y, CVConfig(folds=3))
    cfg = TrainConfig(depth=1, width=32, epochs=2, lr=1e-2)
    result = cross_validate(table, splits, cfg)
    steps = steps_per_epoch(max(len(rows) for rows, _ in splits), cfg.batch_size)
    for k, (train_rows, val_rows) in enumerate(splits):
        scaler = StandardScaler().fit(table.x[train_rows])  # never sees the validation rows
        x_fit, y_fit = as_tensors(scaler.transform(table.x[train_rows]), table.y[train_rows], "cpu")
        x_val, y_val = as_tensors(scaler.transform(table.x[val_rows]), table.y[val_rows], "cpu")
        alone = fit(x_fit, y_fit, 10, cfg, steps=steps, fold=k)
        assert result.folds[k]["loss"] == pytest.approx(evaluate(alone, x_val, y_val)[0], rel=1e-4)


def test_each_folds_imputation_value_is_computed_from_its_training_rows_alone(tmp_path: Path) -> None:
    # the leak test: a gap in a validation fold is filled with the median of that fold's training
    # rows, computed here by numpy from those rows alone, then scaled by them alone
    penguins = load_penguins()  # two rows without sizes; blank more, so that every fold has gaps
    penguins.loc[::5, "bill_depth_mm"] = np.nan
    penguins.loc[::7, "body_mass_g"] = np.nan
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    data, _ = load_training(DataConfig(dataset="table", path=str(tmp_path / "penguins.csv"), target="species"))
    assert data.table is not None
    frame, numeric = data.table.frame, data.table.columns.numeric
    splits = make_splits(data.y, CVConfig(folds=3))
    _, _, _, val, _ = _fold_tensors(data, splits, "cpu")
    differ = 0
    for (rows, val_rows), (x_val, _) in zip(splits, val, strict=True):
        for j, name in enumerate(numeric):
            gaps = np.flatnonzero(frame[name].iloc[val_rows].isna())
            fitting = frame[name].iloc[rows]  # the fold's training rows, nothing else
            median = float(np.median(fitting.dropna()))
            filled = fitting.fillna(median).to_numpy()  # the scaler is fitted after the imputer
            np.testing.assert_allclose(x_val[gaps, j].numpy(), (median - filled.mean()) / filled.std(), rtol=1e-5)
            differ += len(gaps) > 0 and median != float(np.nanmedian(frame[name]))
    assert differ >= 3  # the median of the whole training split would have failed the test
