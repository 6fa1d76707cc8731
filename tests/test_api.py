"""The Python API end to end on digits: study -> report -> final test -> model -> predictions -> ONNX."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import onnxruntime
import optuna
import pytest
import torch
from rich.console import Console
from sklearn.datasets import load_digits

import hpsearch
from hpsearch.config import DataConfig
from hpsearch.data import load_split
from hpsearch.errors import ConfigError
from hpsearch.training.process import flushes_denormals


def test_import_hpsearch_stays_light() -> None:
    code = "import sys, hpsearch; print(sorted(m for m in ('torch', 'optuna', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_api_runs_the_whole_flow_on_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "api.db")
    outcome = hpsearch.run_study(
        None, storage=db, trials=3, dataset="digits", folds=3, sets=["train.epochs=2"], study_name="nb"
    )
    assert outcome.study.study_name == "nb" and len(outcome.study.trials) == 3
    assert outcome.study.metric_names == ["cv_accuracy"]

    report = hpsearch.build_report(db)
    assert set(report.tables()) >= {"summary", "loss", "metrics", "learning_curves"}
    assert report.curves is not None and set(report.curves["epoch"]) <= {1, 2}
    first = outcome.study.trials[0]
    assert report.curves[report.curves["trial"] == 0]["value"].tolist() == [
        first.intermediate_values[s] for s in sorted(first.intermediate_values)
    ]

    result = hpsearch.final_test(db, out_dir=tmp_path / "final")
    assert capsys.readouterr().out == ""  # no console given: nothing printed
    low, high = result.doc["metrics"]["test_ci"]["accuracy"]
    assert low <= result.scores.metrics["accuracy"] <= high

    files = hpsearch.report(db, out_dir=tmp_path / "report")
    assert files.final_test is not None and files.final_test["test_accuracy_ci_low"].iloc[0] == low
    assert (tmp_path / "report" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Learning curves" in html and f"[{low:.4f}, {high:.4f}]" in html  # accuracy with its interval

    model = hpsearch.load_model(tmp_path / "final" / "model.safetensors")
    _, test = load_split(DataConfig(dataset="digits"))
    raw = test.x * 16
    predicted = model.predict(raw)
    assert float((predicted == test.y.astype(str)).mean()) == pytest.approx(result.scores.metrics["accuracy"])
    frame = hpsearch.predict(model, _npz(tmp_path, raw))
    assert list(frame["predicted"]) == list(predicted)

    onnx = hpsearch.export_onnx(model, tmp_path / "m.onnx")
    [proba] = onnxruntime.InferenceSession(str(onnx)).run(None, {"x": raw.astype(np.float32)})
    assert (np.asarray(model.classes)[proba.argmax(axis=1)] == predicted).all()

    with (tmp_path / "l.json").open("w") as f:
        listed = hpsearch.list_studies(db, fmt="json", console=Console(file=f))
    assert list(listed["study"]) == ["nb"] and json.loads((tmp_path / "l.json").read_text())[0]["study"] == "nb"


def _npz(folder: Path, rows: np.ndarray) -> Path:
    np.savez(folder / "rows.npz", x=rows.reshape(-1, 8, 8))
    return folder / "rows.npz"


def test_the_api_raises_instead_of_exiting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        hpsearch.run_study(None, storage=str(tmp_path / "x.db"), sets=["trian.lr=1"])
    with pytest.raises(ConfigError, match="unknown study definition"):
        hpsearch.init_definition("fashion")
    assert json.loads(json.dumps(hpsearch.run_config(None, dataset="digits").study_name)) == "digits"


def _callers_process() -> dict[str, Any]:
    """What a notebook's process holds that hpsearch must not change."""
    denormals = torch.full((1 << 22,), 1e-40) * 1.0  # long enough to run on every torch thread
    return {
        "torch generator": torch.get_rng_state().tolist(),
        "numpy generator": [(s["key"].tolist(), s["pos"]) for s in [np.random.get_state(legacy=False)["state"]]],
        "python generator": random.getstate(),
        "torch threads": torch.get_num_threads(),
        "flush denormals, this thread": flushes_denormals(),
        "denormals flushed by torch's threads": int((denormals == 0).sum()),
        "float32 matmul precision": torch.get_float32_matmul_precision(),
        "SIGINT handler": signal.getsignal(signal.SIGINT),
        "warning filters": list(warnings.filters),
        "loggers": {n: (lg.level, list(lg.handlers), lg.propagate) for n in ("", "hpsearch", "optuna")
                    for lg in [logging.getLogger(n)]},
        "matplotlib backend": matplotlib.get_backend(),
    }  # fmt: skip


def test_the_api_leaves_its_callers_process_as_it_found_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(1234)
    np.random.seed(1234)
    backend, precision = matplotlib.get_backend(), torch.get_float32_matmul_precision()
    matplotlib.use("svg")  # a caller's own choices, none of them hpsearch's
    torch.set_float32_matmul_precision("high")
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    optuna.logging.get_verbosity()  # Optuna sets up its own logger on first use, in any program that uses it
    try:
        before = _callers_process()
        assert before["denormals flushed by torch's threads"] == 0  # no earlier call left its threads flushing
        db = str(tmp_path / "p.db")
        sets = ["train.epochs=1", "train.dropout=0.2", "train.input_dropout=0.1"]
        hpsearch.run_study(None, storage=db, trials=2, dataset="digits", folds=2, sets=sets, pruner="none")
        assert _callers_process() == before, "run_study"
        hpsearch.final_test(db, out_dir=tmp_path / "final")
        assert _callers_process() == before, "final_test"
        hpsearch.report(db, out_dir=tmp_path / "report")
        assert _callers_process() == before, "report"
        hpsearch.load_model(tmp_path / "final").predict(np.zeros((3, 64), dtype=np.float32))
        assert _callers_process() == before, "load_model(...).predict"
        x, y = load_digits(return_X_y=True)
        search = hpsearch.MLPSearchCV(params={"epochs": 1}, n_trials=2, cv=2, pruner="none", random_state=0)
        search.fit(x[:300], y[:300]).predict(x[:3])
        assert _callers_process() == before, "MLPSearchCV(...).fit(...).predict"
    finally:
        signal.signal(signal.SIGINT, previous)
        torch.set_float32_matmul_precision(precision)
        matplotlib.use(backend)
