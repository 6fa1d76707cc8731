"""Repeated K-fold end to end: R x K fold figures per trial, and the t-test and one-SE rule over all of them."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.analysis.choose import corrected_ttest
from hpsearch.store.schema import TRIAL_FOLDS
from tests.conftest import STUDY_ARGS, run_cli


def test_a_repeated_study_scores_and_compares_trials_on_every_repeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    args = ("--set", "cv.repeats=2", "--pruner", "none", "--trials", "2", "--storage", db)
    assert run_cli("study", *STUDY_ARGS, *args) == 0  # 3 folds, 2 repeats: 6 fold-models a trial
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
    trials = {t.number: t for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert len(trials) == 2 and all(len(t.user_attrs[TRIAL_FOLDS]) == 6 for t in trials.values())
    capsys.readouterr()
    assert run_cli("report", db, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    choice = doc["choice"]
    assert (choice["folds"], choice["repeats"]) == (3, 2)
    assert choice["test"].startswith("corrected repeated k-fold cv test")
    assert doc["summary"]["repeats (R)"] == 2
    best = trials[choice["best"]].user_attrs[TRIAL_FOLDS]
    assert len(doc["comparison"]) == 2
    for row in doc["comparison"][1:]:  # the other against the best on the 6 paired scores, 1/K + ... for K = 3
        other = trials[row["trial"]].user_attrs[TRIAL_FOLDS]
        test = corrected_ttest([a["accuracy"] - b["accuracy"] for a, b in zip(other, best, strict=True)], 1 / 2)
        assert (row["t"], row["p"]) == pytest.approx((test.t, test.p), rel=1e-12)
    folds = doc["best_trial_folds"]
    assert [(f["repeat"], f["fold"]) for f in folds] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert [f["accuracy"] for f in folds] == [f["accuracy"] for f in best]
    assert run_cli("final-test", "simplest", "--storage", db, "--out", tmp_path / "final") == 0


def test_the_race_runs_its_waves_over_every_repeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "race.db"
    args = ("--set", "cv.repeats=2", "--pruner", "race", "--trials", "1", "--storage", db)
    assert run_cli("study", *STUDY_ARGS, *args) == 0
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
    first = study.trials[0]  # no incumbent yet: it runs every wave
    assert first.state == TrialState.COMPLETE and len(first.user_attrs[TRIAL_FOLDS]) == 6
    assert max(first.intermediate_values) == 2  # waves of 2 fold-models: 1-2, 3-4, 5-6, one epoch each
    capsys.readouterr()
    assert run_cli("report", db, "--format", "json") == 0
    rows = {row["trial"]: row for row in json.loads(capsys.readouterr().out)["loss"]}
    assert rows[0]["reached"] == "wave 3/3, epoch 1/1"
