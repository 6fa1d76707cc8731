"""`hpsearch final-test` on digits: saved files, reproducible figures, the data check, the count of looks."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support

from hpsearch.analysis.final_test import choose_trial
from hpsearch.config import metric_names
from hpsearch.data import Dataset, load_split
from hpsearch.store import stored_run, study_locked
from hpsearch.store.schema import (
    STUDY_DATA,
    STUDY_DEFINITION,
    STUDY_FINAL_TESTS,
    TRIAL_FOLDS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_STD,
)
from hpsearch.training import evaluate
from hpsearch.training.metrics import classification_metrics
from hpsearch.training.model import build_mlp
from tests.analysis.test_choose import BEST, SIMPLEST, make_study
from tests.conftest import run_cli

RECORD_KEYS = {"trial", "params", "test", "cv_mean", "cv_std", "n_test_evaluations", "created", "seed", "fingerprint"}


class Run(NamedTuple):
    db: Path
    out: Path
    code: int
    stdout: str
    stderr: str


def _study(db: Path, name: str = "digits") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def first(small_study: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One `final-test best` on a copy of the small study (final-test writes to its study)."""
    folder = tmp_path_factory.mktemp("final-test")
    db = folder / "study.db"
    shutil.copy(small_study[0], db)
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = run_cli("final-test", "best", "--storage", f"sqlite:///{db}", "--out", folder / "out")
    return Run(db, folder / "out", code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def reloaded(first: Run) -> tuple[dict[str, Any], Dataset, torch.nn.Module]:
    """The JSON document, the study's data, and model.pt loaded into a fresh MLP of the trial's shape."""
    doc = json.loads((first.out / "final_test.json").read_text())
    defn, _ = stored_run(_study(first.db))
    _, data = load_split(defn.data)  # the test split
    depth, width = doc["params"]["depth"], doc["params"]["width"]
    model = build_mlp(data.n_features, data.n_classes, depth, width, generator=torch.Generator())
    model.load_state_dict(torch.load(first.out / "model.pt", weights_only=True))
    return doc, data, model


def test_best_writes_the_weights_the_json_and_the_record(first: Run) -> None:
    assert first.code == 0 and first.stderr == ""
    for name in ("model.pt", "final_test.json", "per_class.csv", "confusion_matrix.png"):
        assert (first.out / name).stat().st_size > 0
    assert (first.out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    study = _study(first.db)
    best = study.best_trial
    doc = json.loads((first.out / "final_test.json").read_text())
    assert doc["trial"] == best.number and doc["params"] == best.params
    assert doc["fingerprint"] == study.user_attrs[STUDY_DATA]["fingerprint"] and doc["seed"] == 0
    assert doc["loss"]["cv_mean"] == best.user_attrs[TRIAL_MEAN]["loss"]
    assert doc["metrics"]["cv_std"] == {k: best.user_attrs[TRIAL_STD][k] for k in metric_names(10)}
    assert set(doc["versions"]) == {"python", "torch", "optuna", "scikit-learn", "numpy", "hpsearch"}
    assert doc["n_test_evaluations"] == 1
    [record] = study.user_attrs[STUDY_FINAL_TESTS]
    assert set(record) >= RECORD_KEYS and record["n_test_evaluations"] == 1
    assert record["test"] == {"loss": doc["loss"]["test"], **doc["metrics"]["test"]}
    assert record["cv_mean"] == best.user_attrs[TRIAL_MEAN]
    for text in (f"trial {best.number}", "loss: cross-entropy", "metrics", "CV mean ± std", "per class", "width"):
        assert text in first.stdout
    assert "final_test.json" in first.stdout and first.out.name in first.stdout


def test_the_saved_weights_reproduce_the_test_figures(
    reloaded: tuple[dict[str, Any], Dataset, torch.nn.Module],
) -> None:
    doc, data, model = reloaded
    loss, pred, _ = evaluate(model, torch.from_numpy(data.x), torch.from_numpy(data.y))
    assert loss == doc["loss"]["test"]
    assert classification_metrics(data.y, pred, data.n_classes) == doc["metrics"]["test"]


def test_the_figures_are_scikit_learns_on_the_same_predictions(
    first: Run, reloaded: tuple[dict[str, Any], Dataset, torch.nn.Module]
) -> None:
    doc, data, model = reloaded
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data.x)).double()
    proba, pred = torch.softmax(logits, dim=1).numpy(), logits.argmax(dim=1).numpy()
    labels = np.arange(data.n_classes)
    assert log_loss(data.y, proba, labels=labels) == pytest.approx(doc["loss"]["test"], abs=1e-5)
    test = doc["metrics"]["test"]
    assert test["accuracy"] == accuracy_score(data.y, pred)
    macro = precision_recall_fscore_support(data.y, pred, labels=labels, average="macro", zero_division=0)
    assert [test["precision"], test["recall"], test["f1"]] == pytest.approx(list(macro[:3]))
    per_class = precision_recall_fscore_support(data.y, pred, labels=labels, average=None, zero_division=0)
    with (first.out / "per_class.csv").open() as f:
        rows = list(csv.DictReader(f))
    for i, (row, saved) in enumerate(zip(doc["per_class"], rows, strict=True)):
        assert row["class"] == saved["class"] == data.classes[i]
        expected = [float(per_class[0][i]), float(per_class[1][i]), float(per_class[2][i]), int(per_class[3][i])]
        assert [row["precision"], row["recall"], row["f1"], row["support"]] == expected
        assert [float(saved[k]) for k in ("precision", "recall", "f1")] == expected[:3]
    assert doc["confusion_matrix"]["matrix"] == confusion_matrix(data.y, pred, labels=labels).tolist()


def test_a_second_run_warns_and_the_study_counts_both(
    first: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(first.db, db)
    monkeypatch.chdir(tmp_path)  # the default --out is relative to the current folder
    number = str(_study(db).best_trial.number)
    assert run_cli("final-test", number, "--storage", f"sqlite:///{db}") == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning:") and "2 times" in lines[0] and "optimistic" in lines[0]
    records = _study(db).user_attrs[STUDY_FINAL_TESTS]
    assert [r["n_test_evaluations"] for r in records] == [1, 2]
    assert records[0]["test"] == records[1]["test"]  # the retrain is seeded: the same figures again
    doc = json.loads((tmp_path / "reports" / "digits" / "final-test" / "final_test.json").read_text())
    assert doc["n_test_evaluations"] == 2


def _waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` is blocked on a flock (Linux lists waiters as "->" in /proc/locks)."""
    rows = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    return any(row[1] == "->" and row[5] == str(pid) for row in rows)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a waiting process")
def test_final_tests_that_end_together_both_stay_on_the_study(small_study: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    url, ours = f"sqlite:///{db}", {"trial": -1, "note": "another final test of the same study"}
    command = [sys.executable, "-m", "hpsearch", "final-test", "best", "--storage", url, "--out", str(tmp_path / "out")]
    with study_locked(url, "digits"):  # as another final test that has read the list and not yet written it
        before = list(_study(db).user_attrs.get(STUDY_FINAL_TESTS, []))
        final_test = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while final_test.poll() is None and not _waits_for_a_lock(final_test.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _study(db).set_user_attr(STUDY_FINAL_TESTS, [*before, ours])
    assert final_test.wait(timeout=300) == 0
    records = _study(db).user_attrs[STUDY_FINAL_TESTS]
    assert records[0] == ours and records[1]["n_test_evaluations"] == 2 and len(records) == 2


def test_changed_data_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digits = load_digits()
    pixels, table, db = digits.data[:300].copy(), tmp_path / "digits.csv", tmp_path / "t.db"
    _write_table(table, pixels, digits.target[:300])
    study_args = ("--data", table, "--target", "label", "--folds", "2", "--epochs", "1", "--trials", "1", "--quiet")
    assert run_cli("study", *study_args, "--storage", f"sqlite:///{db}") == 0
    assert run_cli("final-test", "--storage", f"sqlite:///{db}", "--out", tmp_path / "a") == 0
    assert "preprocessing" in json.loads((tmp_path / "a" / "final_test.json").read_text())  # a table is scaled
    pixels[7, 30] += 1
    _write_table(table, pixels, digits.target[:300])
    capsys.readouterr()
    assert run_cli("final-test", "--storage", f"sqlite:///{db}", "--out", tmp_path / "b") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the data differ") and "fingerprint" in lines[0]
    assert not (tmp_path / "b").exists()
    assert len(_study(db, "digits").user_attrs[STUDY_FINAL_TESTS]) == 1  # the file digits.csv


def _write_table(path: Path, pixels: np.ndarray, labels: np.ndarray) -> None:
    frame = pd.DataFrame(pixels, columns=[f"px{i}" for i in range(pixels.shape[1])])
    frame["label"] = labels
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def odd_study(small_study: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small study plus a failed trial 4, beside a study "empty" with no complete trial."""
    db = tmp_path_factory.mktemp("odd") / "study.db"
    shutil.copy(small_study[0], db)
    study = _study(db)
    failed = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params={"lr": 0.5},
        distributions={"lr": FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs={"reason": "interrupted (Ctrl-C)"},
    )
    study.add_trial(failed)
    empty = optuna.create_study(storage=f"sqlite:///{db}", study_name="empty", direction="maximize")
    for key in (STUDY_DEFINITION, STUDY_DATA):
        empty.set_user_attr(key, study.user_attrs[key])
    empty.add_trial(failed)
    return db


BAD_INPUTS = {
    "unknown trial number": (["99", "--study-name", "digits"], "no trial 99 in study 'digits'"),
    "failed trial": (["4", "--study-name", "digits"], "trial 4 of study 'digits' is failed: interrupted (Ctrl-C)"),
    "not a trial": (["bset", "--study-name", "digits"], "give 'best', 'simplest' or a trial number"),
    "no complete trial": (["best", "--study-name", "empty"], "has no complete trial to test (1 failed)"),
    "nothing simplest": (["simplest", "--study-name", "empty"], "has no complete trial to test (1 failed)"),
    "missing storage": (["best", "--storage", "sqlite:///{tmp}/nope.db"], "no such study file"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(
    odd_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    args, message = BAD_INPUTS[case]
    args = [a.format(tmp=tmp_path) for a in args]
    storage = [] if "--storage" in args else ["--storage", f"sqlite:///{odd_study}"]
    assert run_cli("final-test", *args, *storage, "--out", tmp_path / "out") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_simplest_is_the_one_se_choice_of_a_hand_made_study(tmp_path: Path, metric: str) -> None:
    study = make_study(tmp_path / "study.db", metric=metric)
    assert choose_trial(study, "best").number == BEST
    assert choose_trial(study, "simplest").number == SIMPLEST


def test_final_test_simplest_retrains_the_fewest_parameters_within_one_se(
    small_study: tuple[Path, str], tmp_path: Path
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    study = _study(db)
    best = study.best_trial
    # the one-SE rule by hand: within the best's fold std / sqrt(K) of its mean, the fewest parameters
    folds = [f["accuracy"] for f in best.user_attrs[TRIAL_FOLDS]]
    assert best.value is not None
    bound = best.value - float(np.std(folds, ddof=1)) / np.sqrt(len(folds))
    values = {t.number: t.value for t in study.trials if t.value is not None}
    within = [t for t in study.trials if values[t.number] >= bound]
    expected = min(within, key=lambda t: (t.user_attrs[TRIAL_PARAMS_COUNT], -values[t.number], t.number))
    assert run_cli("final-test", "simplest", "--storage", f"sqlite:///{db}", "--out", tmp_path / "out") == 0
    doc = json.loads((tmp_path / "out" / "final_test.json").read_text())
    assert doc["trial"] == expected.number and doc["params"] == expected.params
    assert _study(db).user_attrs[STUDY_FINAL_TESTS][0]["trial"] == expected.number
