"""hpsearch.MLPClassifier: scikit-learn's estimator checks, final-test's weights, bundles, pickles, bad settings."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.exceptions import SkipTestWarning
from sklearn.utils.estimator_checks import check_estimator

import hpsearch
from hpsearch.analysis.final_test import choose_for_test
from hpsearch.api import MLPClassifier
from hpsearch.errors import ConfigError
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny MLPs: see tests/conftest.py


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, np.ndarray]:
    """Wine's 178 rows as a DataFrame with a text column (of one missing value) and string labels."""
    data = load_wine(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame["cellar"] = np.where(frame["alcohol"] > 13, "north", "south").astype(object)
    frame.loc[3, "cellar"] = None
    labels = np.array(["barolo", "grignolino", "barbera"], dtype=object)[data.target.to_numpy()]
    return frame, labels


def test_passes_scikit_learns_estimator_checks() -> None:
    with warnings.catch_warnings():  # the array-API check skips itself without SCIPY_ARRAY_API, saying so
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(MLPClassifier(device="cpu"), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed
    assert len(results) > 40


def test_a_dataframe_with_text_and_string_labels_round_trips_through_a_bundle(
    wine: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, labels = wine
    model = MLPClassifier(epochs=3, width=32, lr=0.01, random_state=1, device="cpu").fit(frame, labels)
    assert list(model.classes_) == ["barbera", "barolo", "grignolino"]
    assert list(model.feature_names_in_) == list(frame.columns) and model.n_features_in_ == frame.shape[1]
    assert model.score(frame, labels) > 0.8
    loaded = hpsearch.load_model(model.to_bundle(tmp_path))
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame), rtol=0, atol=1e-6)
    assert list(loaded.predict(frame)) == list(model.predict(frame))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(frame), model.predict_proba(frame))
    assert clone(model).get_params() == model.get_params()


def test_trains_the_weights_final_test_retrains(tmp_path: Path) -> None:
    """A table study's final-test model, and MLPClassifier on the same training rows, settings and seed."""
    data = load_wine(as_frame=True).frame
    data.to_csv(tmp_path / "wine.csv", index=False)
    db = tmp_path / "study.db"
    study = ("study", "--data", tmp_path / "wine.csv", "--target", "target", "--folds", "3", "--epochs", "2")
    assert run_cli(*study, "--trials", "2", "--pruner", "none", "--seed", "4", "--quiet", "--storage", db) == 0
    tested = hpsearch.final_test(str(db), out_dir=tmp_path / "final", device="cpu")
    rows = choose_for_test(f"sqlite:///{db}", None, "best", device="cpu").train
    assert rows.table is not None
    settings = {k: v for k, v in tested.doc["train"].items() if k not in ("seed", "class_weight")}
    ours = MLPClassifier(**settings, random_state=4, device="cpu").fit(rows.table.frame, rows.y)
    for theirs, mine in zip(tested.model.state_dict().values(), ours.model_.module.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs.cpu(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": -1.0}, "train.lr must be a number > 0, but got -1.0"),
        ({"optimizer": "adamw"}, "unknown optimizer 'adamw'"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda, but got 'tpu'"),
        ({"class_weight": {"merlot": 2.0}}, "class_weight names 'merlot', which is not a class"),
        ({"class_weight": {"barolo": -2.0}}, "class weights must be numbers > 0, but got -2.0"),
    ],
)
def test_refuses_a_bad_setting_in_one_line(
    wine: tuple[pd.DataFrame, np.ndarray], settings: dict[str, object], message: str
) -> None:
    frame, labels = wine
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        MLPClassifier(epochs=1, **settings).fit(frame, labels)  # type: ignore[arg-type]


def test_refuses_a_single_class_and_a_column_of_identifiers(wine: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, labels = wine
    with pytest.raises(ValueError, match="needs two classes or more"):
        MLPClassifier(epochs=1).fit(frame, np.full(len(frame), "barolo"))
    named = frame.assign(bottle=[f"b{i}" for i in range(len(frame))])
    with pytest.raises(ValueError, match="column 'bottle' looks like an identifier"):
        MLPClassifier(epochs=1).fit(named, labels)
