"""hpsearch nested: outer folds that partition the training split, each a study of its own that resumes and reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from hpsearch.api.nested import nested_cv
from hpsearch.store.schema import STUDY_OUTER_FOLD
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny MLPs: see tests/conftest.py

NESTED = ("nested", "--dataset", "digits", "--outer", "2", "--folds", "2", "--epochs", "1", "--trials", "2")


def test_the_command_reports_outer_scores_an_interval_the_gap_resumes_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "nested.db", tmp_path / "out"
    assert run_cli(*NESTED, "--pruner", "none", "--storage", db, "--out", out) == 0
    shown = capsys.readouterr().out
    assert "outer fold 2: study 'digits-outer2of2' chose trial" in shown
    assert "optimistic by" in shown or "pessimistic by" in shown
    doc = json.loads((out / "nested.json").read_text())
    folds = doc["folds"]
    assert [f["fold"] for f in folds] == [1, 2] and doc["metric"] == "accuracy"
    n_train = folds[0]["n_fit"] + folds[0]["n_held"]
    assert sum(f["n_held"] for f in folds) == n_train == 1437  # the outer folds partition digits' training split
    outer = [f["outer"]["accuracy"] for f in folds]
    assert math.isclose(doc["mean"], sum(outer) / 2) and doc["interval"][0] <= doc["mean"] <= doc["interval"][1]
    assert math.isclose(doc["gap"], doc["inner_mean"] - doc["mean"])
    for f in folds:
        study = optuna.load_study(study_name=f["study"], storage=f"sqlite:///{db}")
        assert study.user_attrs[STUDY_OUTER_FOLD]["outer"] == f["outer"]
        assert f["inner"] == study.best_value and len(study.trials) == 2
    again = nested_cv(dataset="digits", outer=2, folds=2, epochs=1, trials=2, pruner="none", storage=str(db))
    assert [f.outer for f in again.folds] == [f["outer"] for f in folds]  # continued: nothing retrained
    assert all(len(optuna.load_study(study_name=f["study"], storage=f"sqlite:///{db}").trials) == 2 for f in folds)

    capsys.readouterr()
    assert run_cli("report", db, "--study-name", "digits-outer1of2", "--out", tmp_path / "report") == 0
    shown = capsys.readouterr().out  # an outer fold's study is a study like any other, its fold's figures added
    assert "nested CV outer fold" in shown and "held-out rows (inner CV" in shown
