"""palmerpenguins as it comes (two text columns, 19 missing values), end to end through the CLI: study,
report, final-test, predict on raw rows (a missing value, an unseen category), export to ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import optuna
import pandas as pd
import pytest

import hpsearch
from hpsearch.store.schema import STUDY_DATA, TRIAL_FOLDS
from tests.conftest import FinalTested, onnx_feeds, penguin_rows, run_cli


def test_the_study_reads_text_and_missing_values_and_reports_them(
    tested_penguins: FinalTested, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = optuna.load_study(study_name="penguins", storage=f"sqlite:///{tested_penguins.db}")
    assert study.user_attrs[STUDY_DATA]["columns"]["categorical"] == ["island", "sex"]
    assert all(len(t.user_attrs[TRIAL_FOLDS]) == 3 for t in study.trials)  # every trial scored on 3 folds
    capsys.readouterr()
    assert run_cli("report", tested_penguins.db, "--format", "json") == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["categorical columns"] == "island, sex" and summary["features"] == 11
    doc = json.loads((tested_penguins.folder / "final_test.json").read_text())
    assert doc["data"]["columns"] == study.user_attrs[STUDY_DATA]["columns"]
    assert set(doc["preprocessing"]["numeric"]) == {"bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                                                    "body_mass_g", "year"}  # fmt: skip


def test_predict_takes_raw_rows_and_onnx_gives_its_probabilities(
    tested_penguins: FinalTested, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = penguin_rows(tested_penguins)  # a size missing, a sex missing, an island never seen
    rows.assign(note="ignored")[["note", *reversed(rows.columns)]].to_csv(tmp_path / "new.csv", index=False)
    assert run_cli("predict", tested_penguins.folder, tmp_path / "new.csv", "--out", tmp_path / "p.csv") == 0
    printed = pd.read_csv(tmp_path / "p.csv")
    model = hpsearch.load_model(tested_penguins.folder)
    proba = printed[[f"p_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=1e-5, atol=1e-7)
    assert list(printed["predicted"]) == list(model.predict(rows)) and np.isfinite(proba).all()
    capsys.readouterr()
    assert run_cli("export", tested_penguins.folder, "--onnx", tmp_path / "penguins.onnx") == 0
    assert "one input per raw column" in " ".join(capsys.readouterr().out.split())  # rich wraps lines
    session = onnxruntime.InferenceSession(str(tmp_path / "penguins.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs["island"] == "tensor(string)" and inputs["bill_length_mm"] == "tensor(float)"
    [onnx_proba] = session.run(["probabilities"], onnx_feeds(model.header.input, rows))
    np.testing.assert_allclose(onnx_proba, proba, rtol=1e-5, atol=1e-5)
