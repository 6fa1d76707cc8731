"""hpsearch.MLPSearchCV: the study on arrays and DataFrames, cv_results_ against the stored trials, a Pipeline,
nested CV through cross_val_score, a stored study that report reads and fit continues, bad arguments."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import hpsearch
from hpsearch.api import MLPClassifier, MLPSearchCV
from hpsearch.errors import ConfigError, DefinitionMismatch
from hpsearch.store.schema import STATE_WORDS, TRIAL_FOLDS, TRIAL_REASON

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny MLPs: see tests/conftest.py

FAST: dict[str, Any] = {"epochs": 2, "batch_size": 32}  # fixed training settings: seconds per search
SPACE = {"width": {"low": 16, "high": 64, "log": True}, "lr": {"low": 1e-3, "high": 3e-2, "log": True}}


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_wine(return_X_y=True)
    return np.asarray(x), np.asarray(y)


def search(**given: Any) -> MLPSearchCV:
    args: dict[str, Any] = {"params": FAST, "space": SPACE, "n_trials": 3, "cv": 3, "random_state": 0}
    return MLPSearchCV(**({"device": "cpu"} | args | given))


def test_cv_results_hold_what_the_stored_trials_hold(wine: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = wine
    db = tmp_path / "arrays.db"
    found = search(n_trials=4, pruner="median", storage=db).fit(x, y)
    results = found.cv_results_
    study = optuna.load_study(study_name="arrays", storage=f"sqlite:///{db}")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert len(trials) == 4 == len(results["params"])
    for key in ("params", "param_lr", "param_width", "mean_test_score", "std_test_score", "rank_test_score"):
        assert key in results
    for i, trial in enumerate(trials):
        folds = trial.user_attrs[TRIAL_FOLDS]
        assert results["params"][i] == trial.params and results["param_lr"][i] == trial.params["lr"]
        assert results["state"][i] == STATE_WORDS[trial.state]
        assert results["reason"][i] == trial.user_attrs.get(TRIAL_REASON, "")
        for k, fold in enumerate(folds):
            assert results[f"split{k}_test_score"][i] == fold["accuracy"]
            assert results[f"split{k}_test_loss"][i] == fold["loss"]
            assert results[f"split{k}_test_f1"][i] == fold["f1"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.value is not None
            assert math.isclose(results["mean_test_score"][i], trial.value)
            assert math.isclose(results["std_test_score"][i], float(np.std([f["accuracy"] for f in folds])))
            assert results["mean_fit_time"][i] > 0
    best = study.best_trial
    assert found.best_index_ == best.number and found.best_params_ == best.params
    assert found.best_score_ == best.value and results["rank_test_score"][found.best_index_] == 1
    assert found.simplest_index_ is not None and results["state"][found.simplest_index_] == "complete"
    assert isinstance(found.study_, optuna.Study) and found.n_splits_ == 3
    assert len(pd.DataFrame(results)) == 4
    report = hpsearch.build_report(str(db))  # a stored study like any other
    assert report.study_name == "arrays"


def test_best_estimator_is_the_classifier_of_the_best_settings_and_seed(wine: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = wine
    found = search(random_state=7).fit(x, y)
    alone = MLPClassifier(**(FAST | found.best_params_), random_state=7, device="cpu").fit(x, y)
    for mine, theirs in zip(
        found.best_estimator_.model_.module.state_dict().values(),
        alone.model_.module.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    np.testing.assert_array_equal(found.predict_proba(x), alone.predict_proba(x))
    assert found.score(x, y) == alone.score(x, y)


def test_a_dataframe_with_text_string_labels_and_a_splitter(wine: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = wine
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["cellar"] = np.where(x[:, 0] > 13, "north", "south").astype(object)
    labels = np.array(["barolo", "grignolino", "barbera"], dtype=object)[y]
    found = search(cv=StratifiedKFold(3, shuffle=True, random_state=1)).fit(frame, labels)
    assert list(found.classes_) == ["barbera", "barolo", "grignolino"]
    assert set(found.predict(frame.iloc[:20])) <= set(labels)
    assert found.best_estimator_.feature_names_in_[-1] == "cellar"


def test_groups_stay_in_one_fold(wine: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = wine
    groups = np.arange(len(y)) % 9
    found = search(n_trials=1, cv=GroupKFold(3)).fit(x, y, groups=groups)
    assert found.n_splits_ == 3 and found.cv_results_["state"][0] == "complete"


def test_in_a_pipeline_and_inside_cross_val_score(wine: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = wine
    pipe = make_pipeline(FunctionTransformer(np.log1p), search(n_trials=2))
    assert pipe.fit(x, y).score(x, y) > 0.5
    outer = cross_val_score(search(n_trials=2, cv=2), x, y, cv=StratifiedKFold(2, shuffle=True, random_state=0))
    assert outer.shape == (2,) and all(0 <= s <= 1 for s in outer)


def test_a_stored_study_continues_and_refuses_other_rows(wine: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = wine
    db = tmp_path / "study.db"
    search(n_trials=2, storage=db, study_name="wine").fit(x, y)
    assert len(search(n_trials=3, storage=db, study_name="wine").fit(x, y).cv_results_["params"]) == 3
    with pytest.raises(DefinitionMismatch, match="was run on other data"):
        search(n_trials=4, storage=db, study_name="wine").fit(x[:150], y[:150])


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ({"scoring": "acuracy"}, ConfigError, "MLPSearchCV: unknown metric 'acuracy' \\(did you mean 'accuracy'\\?\\)"),
        ({"params": {"epochs": 0}}, ConfigError, "train.epochs must be a whole number >= 1, but got 0"),
        ({"params": {"lr": 0.01}}, ConfigError, "params fixes 'lr', but space searches it"),
        ({"pruner": "ripe"}, ConfigError, "unknown name 'ripe'"),
        ({"scoring": "roc_auc"}, ConfigError, "scoring=roc_auc needs two classes, but arrays has 3"),
        ({"cv": 100}, ValueError, "cv=100 is larger than the smallest class .* use at most cv=48"),
        ({"n_trials": 0}, ConfigError, "n_trials must be a whole number >= 1, but got 0"),
        ({"device": "gpu"}, ConfigError, "device must be one of auto, cpu, cuda, but got 'gpu'"),
    ],
)
def test_refuses_bad_arguments_before_a_trial(
    wine: tuple[np.ndarray, np.ndarray], given: dict[str, Any], error: type[Exception], message: str
) -> None:
    x, y = wine
    with pytest.raises(error, match=message):
        search(**given).fit(x, y)
