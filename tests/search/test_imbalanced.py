"""Imbalanced classes end to end: class weights searched, balanced accuracy and ROC AUC as the
study's metric, in every report, and in the final test with their intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from hpsearch.api import load_model
from hpsearch.config import metric_names
from hpsearch.data import load_split
from hpsearch.store import load_study, stored_run
from hpsearch.store.schema import STUDY_FINAL_TESTS, TRIAL_FOLDS, TRIAL_MEAN
from tests.analysis.test_choose import make_study
from tests.conftest import run_cli

_SPACE = """[train]
depth = 1
width = 16
epochs = 3
batch_size = 32
[space]
class_weight = { choices = ["none", "balanced"] }
lr = { low = 0.003, high = 0.03, log = true }
"""


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's breast cancer table as a CSV: 569 rows, 30 features, 212 malignant and 357 benign."""
    folder = tmp_path_factory.mktemp("cancer")
    data = load_breast_cancer(as_frame=True)
    frame = data.data.assign(diagnosis=[str(data.target_names[t]) for t in data.target])
    frame.to_csv(folder / "cancer.csv", index=False)
    (folder / "space.toml").write_text(_SPACE)
    return folder


def _study(folder: Path, metric: str) -> tuple[Path, optuna.Study]:
    db = folder / f"{metric}.db"
    args = ("--data", folder / "cancer.csv", "--target", "diagnosis", "--config", folder / "space.toml")
    assert run_cli("study", *args, "--folds", "3", "--metric", metric, "--trials", "2", "--quiet", "--storage", db) == 0
    return db, optuna.load_study(study_name="cancer", storage=f"sqlite:///{db}")


@pytest.mark.parametrize("metric", ["balanced_accuracy", "roc_auc"])
def test_an_imbalanced_table_searched_reported_and_tested_by_its_metric(
    cancer: Path, metric: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, study = _study(cancer, metric)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete and study.metric_names == [f"cv_{metric}"]
    assert {t.params["class_weight"] for t in study.trials} <= {"none", "balanced"}
    for t in complete:  # the objective is the CV mean of the metric, every fold holds every metric
        folds = t.user_attrs[TRIAL_FOLDS]
        assert t.value == t.user_attrs[TRIAL_MEAN][metric] == pytest.approx(np.mean([f[metric] for f in folds]))
        assert all(set(f) == {"loss", *metric_names(2)} for f in folds)
    capsys.readouterr()
    assert run_cli("report", db, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metric"] == metric and doc["direction"] == "maximize"
    row = doc["metrics"][0]
    assert row["trial"] == study.best_trial.number and row[f"{metric}_mean"] == study.best_value
    assert {"balanced_accuracy_mean", "roc_auc_mean", "roc_auc_std"} <= set(row)
    assert set(doc["best_trial_folds"][0]) >= {"balanced_accuracy", "roc_auc"}
    out = tmp_path / "final"
    assert run_cli("final-test", "best", "--storage", db, "--out", out) == 0
    final = json.loads((out / "final_test.json").read_text())
    test, intervals = final["metrics"]["test"], final["metrics"]["test_ci"]
    for name in ("balanced_accuracy", "roc_auc"):
        low, high = intervals[name]
        assert low < test[name] < high, name  # the bootstrap's 95% interval holds the figure
    # the figures are scikit-learn's on the test rows, from the saved model's probabilities
    defn, _ = stored_run(load_study(f"sqlite:///{db}", None))
    _, test_split = load_split(defn.data)
    proba = load_model(out).predict_proba(test_split.x)
    assert test["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(test_split.y, proba.argmax(1)))
    assert test["roc_auc"] == pytest.approx(roc_auc_score(test_split.y, proba[:, 1]), abs=1e-4)
    [entry] = optuna.load_study(study_name="cancer", storage=f"sqlite:///{db}").user_attrs[STUDY_FINAL_TESTS]
    assert entry["test_ci"]["roc_auc"] == intervals["roc_auc"]
    assert run_cli("report", db, "--out", tmp_path / "report") == 0
    tested = pd.read_csv(tmp_path / "report" / "final_test.csv")
    assert tested["test_roc_auc_ci_low"].iloc[0] == intervals["roc_auc"][0]
    assert "balanced_accuracy" in (tmp_path / "report" / "report.md").read_text()
    assert "roc_auc" in (tmp_path / "report" / "report.html").read_text()


def test_a_study_stored_before_the_new_metrics_still_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # make_study stores folds of accuracy, precision, recall and F1 only, as hpsearch did before
    make_study(tmp_path / "old.db")
    assert run_cli("report", tmp_path / "old.db", "--out", tmp_path / "out") == 0
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert metrics["accuracy_mean"].notna().any() and metrics["balanced_accuracy_mean"].isna().all()
    assert "roc_auc_mean" not in metrics  # the stored data have ten classes
    folds = pd.read_csv(tmp_path / "out" / "best_trial_folds.csv")
    assert folds["balanced_accuracy"].isna().all()
    capsys.readouterr()
    assert run_cli("report", tmp_path / "old.db", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["metrics"][0]["balanced_accuracy_mean"] is None
