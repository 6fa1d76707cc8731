"""Grouped rows: every group's rows on one side of the hold-out and of every fold, on a real table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from hpsearch.config import CVConfig, DataConfig
from hpsearch.data import fingerprint, load_split, load_training
from hpsearch.errors import ConfigError
from hpsearch.store.schema import STUDY_DATA
from hpsearch.training import make_splits
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's wine table (178 rows of 3 cultivars) with a patient-like group column: 36
    groups of about five consecutive rows, so a group's rows are mostly of one class and alike."""
    folder = tmp_path_factory.mktemp("wine")
    data = load_wine(as_frame=True)
    frame = data.data.assign(cultivar=[f"c{t}" for t in data.target], lot=np.arange(len(data.target)) // 5)
    frame.sample(frac=1.0, random_state=0).to_csv(folder / "wine.csv", index=False)  # groups' rows scattered
    return folder / "wine.csv"


def _cfg(path: Path, split_seed: int = 0) -> DataConfig:
    return DataConfig(dataset="table", path=str(path), target="cultivar", groups="lot", split_seed=split_seed)


def test_no_group_is_on_both_sides_of_the_hold_out_or_of_any_fold(wine: Path) -> None:
    train, test = load_split(_cfg(wine))
    assert train.groups is not None and test.groups is not None
    assert train.n_features == 13  # the group column is no feature
    assert not set(train.groups) & set(test.groups)  # training and test splits
    assert set(train.y) == set(test.y) == {0, 1, 2}
    assert 0.12 < len(test) / (len(train) + len(test)) < 0.3  # one fifth of the groups, about a fifth of the rows
    for repeat_seed in (0, 1):
        splits = make_splits(train.y, CVConfig(folds=4, seed=repeat_seed), train.classes, train.groups)
        assert sorted(np.concatenate([v for _, v in splits]).tolist()) == list(range(len(train)))
        for rows, val in splits:
            assert not set(train.groups[rows]) & set(train.groups[val])  # training and validation rows
            assert set(train.y[rows]) == set(train.y[val]) == {0, 1, 2}
    plain = make_splits(train.y, CVConfig(folds=4), train.classes)  # what grouping prevents
    assert any(set(train.groups[rows]) & set(train.groups[val]) for rows, val in plain)


def test_the_fingerprint_covers_the_groups_and_the_split_seed_moves_the_hold_out(wine: Path, tmp_path: Path) -> None:
    grouped, data = load_training(_cfg(wine))
    ungrouped, plain = load_training(DataConfig(dataset="table", path=str(wine), target="cultivar"))
    assert data["fingerprint"] != plain["fingerprint"] and "whole groups of lot" in data["test_split"]
    assert ungrouped.n_features == 14  # without --groups the column is a feature, as before
    frame = pd.read_csv(wine)
    frame.assign(lot=frame["lot"] // 2).to_csv(tmp_path / "coarser.csv", index=False)  # two groups as one
    train, test = load_split(_cfg(tmp_path / "coarser.csv"))
    assert fingerprint(train, test) != data["fingerprint"]
    other, _ = load_split(_cfg(wine, split_seed=1))
    assert other.groups is not None and grouped.groups is not None
    assert set(other.groups.tolist()) != set(grouped.groups.tolist())


def test_too_few_groups_for_the_folds_or_for_a_class_are_refused(wine: Path) -> None:
    train, _ = load_split(_cfg(wine))
    assert train.groups is not None
    with pytest.raises(ConfigError, match=r"--folds 30 is more than the \d+ groups of the training split"):
        make_splits(train.y, CVConfig(folds=30), train.classes, train.groups)
    # class c2 kept in three groups: some of five folds must lack it
    few = np.isin(train.groups, np.unique(train.groups[train.y == 2])[:3]) | (train.y != 2)
    with pytest.raises(ConfigError, match=r"fold \d of 5 has no (training|validation) row of class 'c2': its rows lie"):
        make_splits(train.y[few], CVConfig(folds=5), train.classes, train.groups[few])


def test_a_grouped_study_keeps_its_hold_out_through_final_test(
    wine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    args = ("--data", wine, "--target", "cultivar", "--groups", "lot", "--folds", "3", "--epochs", "2")
    assert run_cli("study", *args, "--trials", "2", "--pruner", "none", "--quiet", "--storage", db) == 0
    study = optuna.load_study(study_name="wine", storage=f"sqlite:///{db}")
    assert study.user_attrs[STUDY_DATA]["fingerprint"] == load_training(_cfg(wine))[1]["fingerprint"]
    assert len(study.trials) == 2
    # the same study without --groups is other data: refused in one line
    capsys.readouterr()
    assert run_cli("study", *args[:4], "--folds", "3", "--epochs", "2", "--trials", "3", "--storage", db) == 2
    assert "was created with data.groups='lot'" in capsys.readouterr().err
    assert run_cli("final-test", "best", "--storage", db, "--out", tmp_path / "final") == 0
    doc = json.loads((tmp_path / "final" / "final_test.json").read_text())
    assert doc["data"]["n_features"] == 13 and "whole groups" in doc["data"]["test_split"]
