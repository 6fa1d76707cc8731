"""`[final] model = "fold-ensemble"`: the winner's K fold-models, kept during the search, judged once.

A digits study declared with the fold-ensemble keeps the fold-models of its best ``keep`` complete
trials in Optuna's artifact store beside the study file; final-test scores the chosen trial's
members, averaged, and writes them as one model file that predict, load_model and ONNX read.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import optuna
import pandas as pd
import pytest
import torch
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from sklearn.metrics import accuracy_score

from hpsearch.analysis.final_test import choose_for_test
from hpsearch.store import load_study
from hpsearch.training import cross_validate, make_splits
from hpsearch.training.bundle import load_bundle
from hpsearch.training.ensemble import LoadedEnsemble
from hpsearch.training.export import to_onnx
from tests.conftest import FinalTested, final_tested, onnx_feeds, penguin_rows, run_cli

DEFINITION = """
[data]
dataset = "digits"
[cv]
folds = 3
[train]
epochs = 2
[final]
model = "fold-ensemble"
keep = 2
"""


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> FinalTested:
    """A 4-trial digits study declared with the fold-ensemble (keep 2), and its final test of the best."""
    folder = tmp_path_factory.mktemp("fold-ensemble")
    (folder / "study.toml").write_text(DEFINITION)
    db = folder / "study.db"
    args = ("--config", folder / "study.toml", "--trials", "4", "--pruner", "none", "--quiet", "--storage", db)
    assert run_cli("study", *args) == 0
    return final_tested(db, folder / "final")


def _study(db: Path) -> optuna.Study:
    return load_study(f"sqlite:///{db}", None)


def test_the_store_holds_the_fold_models_of_the_best_keep_trials_only(ensemble: FinalTested) -> None:
    study = _study(ensemble.db)
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -float(t.value or 0.0))
    assert len(complete) == 4
    files = sorted((ensemble.db.parent / "study.db.models").rglob("*"))
    assert len([f for f in files if f.is_file()]) == 2
    # the artifacts still on disk are the two best trials'; the pushed-out trials' files are gone
    kept = {t.number for t in complete for m in get_all_artifact_meta(t, storage=study._storage)
            if any(m.artifact_id in f.name for f in files)}  # fmt: skip
    assert kept == {complete[0].number, complete[1].number}


def test_the_members_are_the_winners_fold_models_as_cross_validation_trains_them(ensemble: FinalTested) -> None:
    chosen = choose_for_test(f"sqlite:///{ensemble.db}", None, "best")
    splits = make_splits(chosen.train.y, chosen.definition.cv, chosen.train.classes, chosen.train.groups)
    again = cross_validate(chosen.train, splits, chosen.cfg, keep_models=True).members
    loaded = load_bundle(ensemble.folder)
    assert isinstance(loaded, LoadedEnsemble)
    assert again is not None and len(loaded.parts) == len(again) == 3
    for part, member in zip(loaded.parts, again, strict=True):
        for stored, trained in zip(part.model.state_dict().values(), member.model.state_dict().values(), strict=True):
            torch.testing.assert_close(stored, trained.cpu(), rtol=1e-5, atol=1e-6)


def test_the_ensemble_averages_its_members_and_its_figures_are_the_files(ensemble: FinalTested) -> None:
    loaded = load_bundle(ensemble.folder)
    assert isinstance(loaded, LoadedEnsemble)
    raw = ensemble.test_x * np.float32(loaded.header.input.pixel_max)
    proba = loaded.predict_proba(raw)
    with torch.no_grad():
        x = torch.from_numpy(raw)
        members = [torch.softmax(mlp(affine(x)), dim=1).numpy() for affine, mlp, _ in loaded.members]
    np.testing.assert_allclose(proba, np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    # the members disagree somewhere: the average is not any one of them
    assert any(np.abs(m - proba).max() > 1e-3 for m in members)
    doc = json.loads((ensemble.folder / "final_test.json").read_text())
    assert doc["model"] == "fold-ensemble"
    assert doc["metrics"]["test"]["accuracy"] == pytest.approx(accuracy_score(ensemble.test_y, proba.argmax(axis=1)))
    predicted = loaded.predict(raw)
    assert list(predicted) == [loaded.classes[i] for i in proba.argmax(axis=1)]


def test_onnx_of_the_ensemble_gives_its_probabilities(ensemble: FinalTested, tmp_path: Path) -> None:
    loaded = load_bundle(ensemble.folder)
    raw = ensemble.test_x * np.float32(loaded.header.input.pixel_max)
    to_onnx(loaded, tmp_path / "ensemble.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "ensemble.onnx"), providers=["CPUExecutionProvider"])
    [proba] = session.run(["probabilities"], onnx_feeds(loaded.header.input, raw))
    np.testing.assert_allclose(proba, loaded.predict_proba(raw), rtol=1e-5, atol=1e-6)


def test_fold_models_not_kept_are_trained_again_with_a_warning(
    ensemble: FinalTested, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(ensemble.db, db)  # without the folder of kept fold-models
    with caplog.at_level(logging.WARNING, logger="hpsearch"):
        assert run_cli("final-test", "best", "--storage", db, "--out", tmp_path / "final") == 0
    assert "were not kept" in caplog.text
    said = " ".join(capsys.readouterr().out.split())  # rich wraps lines at the terminal's width
    assert "its fold-models as the search trained them, their probabilities averaged" in said
    kept = json.loads((ensemble.folder / "final_test.json").read_text())
    again = json.loads((tmp_path / "final" / "final_test.json").read_text())
    assert again["trial"] == kept["trial"]
    # trained again from the stored split and seeds: the same members, up to float rounding
    assert again["loss"]["test"] == pytest.approx(kept["loss"]["test"], rel=1e-4)
    assert abs(again["metrics"]["test"]["accuracy"] - kept["metrics"]["test"]["accuracy"]) <= 1 / len(ensemble.test_y)


def test_a_table_ensemble_predicts_raw_rows_and_refuses_onnx_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from palmerpenguins import load_penguins

    folder = tmp_path_factory.mktemp("penguin-ensemble")
    load_penguins().to_csv(folder / "penguins.csv", index=False)
    (folder / "study.toml").write_text('[final]\nmodel = "fold-ensemble"\n')
    args = ("--data", folder / "penguins.csv", "--target", "species", "--folds", "3", "--epochs", "5", "--quiet")
    db = folder / "study.db"
    assert run_cli("study", "--config", folder / "study.toml", *args, "--trials", "2", "--storage", db) == 0
    tested = final_tested(db, folder / "final")
    rows = penguin_rows(tested)  # a number missing, a text missing, an island never seen
    loaded = load_bundle(tested.folder)
    assert isinstance(loaded, LoadedEnsemble)
    proba = loaded.predict_proba(rows)
    assert proba.shape == (len(rows), 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = pd.Series(loaded.predict(rows))
    assert set(predicted) <= {"Adelie", "Chinstrap", "Gentoo"}
    capsys.readouterr()
    assert run_cli("export", tested.folder, "--onnx", folder / "m.onnx") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fold-ensemble of a table model" in err[0]
    assert not (folder / "m.onnx").exists()
