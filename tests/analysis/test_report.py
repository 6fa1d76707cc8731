"""`hpsearch report` on real studies: stored figures in the tables, files, JSON, HTML, bad input."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from hpsearch.analysis.report import build_report
from hpsearch.config import Definition, RunConfig, metric_names, with_overrides
from hpsearch.data import load_training
from hpsearch.search.space import suggest
from hpsearch.search.study import open_study
from hpsearch.store import open_storage, stored_run
from hpsearch.store.schema import (
    STUDY_FINAL_TESTS,
    TRIAL_FOLDS,
    TRIAL_MACS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_REASON,
    TRIAL_STD,
)
from hpsearch.training.cv import summarize
from tests.analysis.test_choose import BEST, SIMPLEST, TIED, WITHIN_1SE, make_study
from tests.conftest import STUDY_ARGS, run_cli

METRICS = metric_names(10)  # digits: ten classes, no ROC AUC
FIGURES = ("loss", *METRICS)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _trials(db: Path, name: str = "digits") -> dict[int, FrozenTrial]:
    return {t.number: t for t in optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials}


def _csv(path: Path) -> pd.DataFrame:
    # exactly the floats written: pandas 3 parses round-trip by default (and deprecates the option);
    # pandas 2's default parser may miss by one ulp
    if int(pd.__version__.split(".")[0]) >= 3:
        return pd.read_csv(path)
    return pd.read_csv(path, float_precision="round_trip")


def _summary(folder: Path) -> dict[str, str]:
    table = _csv(folder / "summary.csv")
    return dict(zip(table["item"].astype(str), table["value"].astype(str), strict=True))


def _report(db: Path, out: Path, *args: str) -> int:
    return run_cli("report", str(db), "--out", str(out), *args)


@pytest.fixture(scope="module")
def report_dir(small_study: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "digits"
    assert _report(small_study[0], out) == 0
    return out


@pytest.fixture(scope="module")
def six_trials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six complete trials: enough for parameter importances."""
    db = tmp_path_factory.mktemp("six") / "study.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "6", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    return db


def test_every_table_is_written(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    tables = {"summary.csv", "loss.csv", "metrics.csv", "best_trial_folds.csv", "report.md", "report.html"}
    assert tables <= names
    assert {"history.png", "metric_vs_width.png", "metric_vs_depth.png"} <= names
    assert {"comparison.csv", "top_trials.png", "pareto.png"} <= names
    assert "importances.csv" not in names and "final_test.csv" not in names  # 4 trials, never tested
    assert "need at least 5 complete trials" in (report_dir / "report.md").read_text()


def test_tables_hold_the_stored_fold_means_and_stds(report_dir: Path, small_study: tuple[Path, str]) -> None:
    trials = _trials(small_study[0])
    for name, figures in (("loss.csv", ("loss",)), ("metrics.csv", METRICS)):
        table = _csv(report_dir / name)
        assert sorted(table["trial"]) == sorted(trials)
        for row in table.to_dict(orient="records"):
            stored = trials[row["trial"]].user_attrs
            assert row["state"] == "complete" and row["folds"] == len(stored[TRIAL_FOLDS]) == 3
            for figure in figures:
                assert row[f"{figure}_mean"] == stored[TRIAL_MEAN][figure]
                assert row[f"{figure}_std"] == stored[TRIAL_STD][figure]


def test_loss_and_metrics_are_separate_tables(report_dir: Path) -> None:
    loss = _csv(report_dir / "loss.csv").columns
    metrics = _csv(report_dir / "metrics.csv").columns
    assert {"loss_mean", "loss_std"} <= set(loss)
    assert not any(c.startswith(METRICS) for c in loss)
    assert {f"{m}_{s}" for m in METRICS for s in ("mean", "std")} <= set(metrics)
    assert not any(c.startswith("loss") for c in metrics)


def test_rows_are_ordered_by_the_metric_best_first(report_dir: Path) -> None:
    accuracy = _csv(report_dir / "metrics.csv")["accuracy_mean"].tolist()
    assert accuracy == sorted(accuracy, reverse=True)
    assert _csv(report_dir / "loss.csv")["trial"].tolist() == _csv(report_dir / "metrics.csv")["trial"].tolist()


def test_best_trial_folds_are_the_stored_folds(report_dir: Path, small_study: tuple[Path, str]) -> None:
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{small_study[0]}")
    folds = _csv(report_dir / "best_trial_folds.csv")
    assert set(folds["trial"]) == {study.best_trial.number}
    assert folds[list(FIGURES)].to_dict(orient="records") == study.best_trial.user_attrs[TRIAL_FOLDS]
    summary = _summary(report_dir)
    assert summary["trials complete"] == "4" and summary["folds (K)"] == "3"
    assert summary["best trial"] == str(study.best_trial.number)


def test_html_is_self_contained_and_embeds_the_plots(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 5
    for data in images:
        height, width = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png").shape[:2]
        assert height > 100 and width > 100
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing loaded from elsewhere
    loss_section = page.split('<section id="loss">')[1].split("</section>")[0]
    assert "<th>loss</th>" in loss_section and "<th>accuracy</th>" not in loss_section


def test_json_is_one_document_on_stdout(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _report(small_study[0], tmp_path / "r", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    trials = _trials(small_study[0])
    assert doc["study"] == "digits" and doc["summary"]["trials complete"] == 4
    for row in doc["metrics"]:
        assert row["f1_mean"] == trials[row["trial"]].user_attrs[TRIAL_MEAN]["f1"]
    assert all("accuracy_mean" not in row for row in doc["loss"])
    assert doc["importances"] is None and doc["final_test"] is None
    assert [row["trial"] for row in doc["comparison"]] == _csv(tmp_path / "r" / "comparison.csv")["trial"].tolist()
    assert doc["choice"]["best"] == doc["summary"]["best trial"] and doc["comparison"][0]["p"] is None
    assert doc["choice"]["simplest"] == doc["summary"]["simplest trial (1-SE rule)"]
    assert (tmp_path / "r" / "report.html").exists()


def test_default_folder_top_and_sort(
    small_study: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert run_cli("report", str(small_study[0]), "--top", "1", "--sort", "loss") == 0
    out = capsys.readouterr().out
    loss = _csv(tmp_path / "reports" / "digits" / "loss.csv")
    assert loss["loss_mean"].tolist() == sorted(loss["loss_mean"])
    assert "1 of 4 trials by loss_mean, lowest first" in " ".join(out.split())


def test_unknown_sort_column_names_the_valid_ones(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _report(small_study[0], tmp_path, "--sort", "acuracy_mean") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "did you mean 'accuracy_mean'" in lines[0] and "loss_std" in lines[0]


def _not_sqlite(tmp: Path, small: Path) -> list[str]:
    (tmp / "notes.db").write_text("not a database\n")
    return [str(tmp / "notes.db")]


def _no_studies(tmp: Path, small: Path) -> list[str]:
    open_storage(f"sqlite:///{tmp / 'empty.db'}")  # creates the tables, and no study
    return [str(tmp / "empty.db")]


BAD_INPUTS: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {  # case -> (make the args, message)
    "missing file": (lambda tmp, small: [str(tmp / "nope.db")], "no such study file"),
    "not SQLite": (_not_sqlite, "is not an SQLite database"),
    "no studies": (_no_studies, "holds no study"),
    "unknown study": (lambda tmp, small: [str(small), "--study-name", "digts"], "did you mean 'digits'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(
    case: str, small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, message = BAD_INPUTS[case]
    args = make(tmp_path, small_study[0])
    capsys.readouterr()
    assert run_cli("report", *args, "--out", str(tmp_path / "out")) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert captured.out == ""


@pytest.fixture
def unfinished_study(tmp_path: Path) -> Path:
    """A study whose only trials were pruned after one fold and failed before any."""
    db = tmp_path / "study.db"
    defn = with_overrides(Definition(), dataset="digits", folds=3, epochs=1)
    study = open_study(
        RunConfig(definition=defn, storage=f"sqlite:///{db}", study_name="digits"), load_training(defn.data)[1]
    )
    fold = {"loss": 2.1, "accuracy": 0.2, "precision": 0.1, "recall": 0.2, "f1": 0.12}
    pruned = study.ask()
    suggest(pruned, defn.space, defn.train)
    mean, std = summarize([fold])
    for key, value in ((TRIAL_FOLDS, [fold]), (TRIAL_MEAN, mean), (TRIAL_STD, std), (TRIAL_REASON, "pruned")):
        pruned.set_user_attr(key, value)
    study.tell(pruned, state=TrialState.PRUNED)
    failed = study.ask()
    suggest(failed, defn.space, defn.train)
    study.tell(failed, state=TrialState.FAIL)
    return db


def test_a_study_with_nothing_complete_still_reports(
    unfinished_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _report(unfinished_study, tmp_path / "r") == 0
    assert "No trial has completed yet" in " ".join(capsys.readouterr().out.split())
    loss = _csv(tmp_path / "r" / "loss.csv").set_index("trial")
    assert loss.loc[0, "state"] == "pruned" and loss.loc[0, "folds"] == 1 and loss.loc[0, "loss_mean"] == 2.1
    assert loss["loss_std"].isna().loc[0]  # one fold has no spread
    assert loss.loc[1, "state"] == "failed" and loss.loc[1, "folds"] == 0
    assert not (tmp_path / "r" / "best_trial_folds.csv").exists()
    assert not (tmp_path / "r" / "comparison.csv").exists() and not (tmp_path / "r" / "pareto.png").exists()
    summary = _summary(tmp_path / "r")
    assert (summary["trials pruned"], summary["trials failed"], summary["trials complete"]) == ("1", "1", "0")


def test_final_tests_are_shown_apart_as_test_split_results(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
    best = study.best_trial
    test = {"loss": 0.4, "accuracy": 0.9, "precision": 0.91, "recall": 0.89, "f1": 0.9}
    cv = {"cv_mean": best.user_attrs[TRIAL_MEAN], "cv_std": best.user_attrs[TRIAL_STD]}
    entries = [
        {"trial": best.number, "params": best.params, "test": test, **cv, "n_test_evaluations": n, "created": f"{n}"}
        for n in (1, 2)
    ]
    study.set_user_attr(STUDY_FINAL_TESTS, entries)
    capsys.readouterr()
    assert _report(db, tmp_path / "r") == 0
    assert "used the test split 2 times" in " ".join(capsys.readouterr().out.split())
    final = _csv(tmp_path / "r" / "final_test.csv")
    assert final["n_test_evaluations"].tolist() == [1, 2] and final["test_accuracy"].tolist() == [0.9, 0.9]
    assert final["width"].tolist() == [best.params["width"]] * 2
    page = (tmp_path / "r" / "report.html").read_text()
    assert '<section id="final_test" class="test"><h2>Final test: results on the TEST split' in page


@pytest.mark.slow
def test_importances_once_five_trials_are_complete(six_trials: Path, tmp_path: Path) -> None:
    assert _report(six_trials, tmp_path / "r") == 0
    importances = _csv(tmp_path / "r" / "importances.csv")
    assert set(importances["param"]) == {"depth", "width", "optimizer", "lr"}
    assert importances["importance"].sum() == pytest.approx(1.0)
    assert (tmp_path / "r" / "importances.png").exists()
    assert _report(six_trials, tmp_path / "again") == 0  # fANOVA is seeded: the same study, the same figures
    assert _csv(tmp_path / "again" / "importances.csv").equals(importances)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it for this test)")
def test_the_html_renders_in_a_browser(report_dir: Path, tmp_path: Path) -> None:
    # A copy with a probe that writes each image's decoded size into the DOM once the page has loaded.
    probe = 'addEventListener("load",()=>{document.body.dataset.sizes=[...document.images].map(i=>i.naturalWidth+"x"+i.naturalHeight).join(" ")})'  # noqa: E501
    page = tmp_path / "report.html"
    page.write_text((report_dir / "report.html").read_text().replace("</body>", f"<script>{probe}</script></body>"))
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    flags += [
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--dump-dom",
        "--window-size=1200,2000",
    ]
    assert CHROMIUM is not None
    dom = subprocess.run([CHROMIUM, *flags, page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    sizes = re.search(r'data-sizes="([^"]*)"', dom.stdout)
    assert sizes is not None
    dims = [tuple(map(int, s.split("x"))) for s in sizes.group(1).split()]
    assert len(dims) == 5 and all(w > 100 and h > 100 for w, h in dims)
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert (pixels < 0.9).any(axis=-1).mean() > 0.02  # text and tables, not a blank page
    assert (np.ptp(pixels, axis=-1) > 0.3).sum() > 500  # coloured plot marks: the images are drawn


# --- "Is the best really the best?" --------------------------------------------------------


def test_the_comparison_is_the_corrected_ttest_on_the_stored_folds(
    report_dir: Path, small_study: tuple[Path, str]
) -> None:
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{small_study[0]}")
    trials, best = _trials(small_study[0]), study.best_trial
    table = _csv(report_dir / "comparison.csv")
    assert table["trial"].tolist()[0] == best.number and table["rank"].tolist() == [1, 2, 3, 4]
    assert table["accuracy_mean"].tolist() == sorted(table["accuracy_mean"], reverse=True)
    best_folds = [f["accuracy"] for f in best.user_attrs[TRIAL_FOLDS]]
    for row in table.to_dict(orient="records"):
        stored = trials[row["trial"]].user_attrs
        assert row["n_params"] == stored[TRIAL_PARAMS_COUNT] and row["macs"] == stored[TRIAL_MACS]
        assert row["accuracy_mean"] == pytest.approx(stored[TRIAL_MEAN]["accuracy"], rel=1e-12)
        if row["trial"] == best.number:
            assert row["choice"].startswith("best") and row["diff_vs_best"] == 0 and math.isnan(row["p"])
            continue
        d = np.array([f["accuracy"] for f in stored[TRIAL_FOLDS]]) - best_folds
        scale = math.sqrt((1 / 3 + 1 / 2) * d.var(ddof=1))  # K=3: 1/K + n_val/n_train, the latter 1/(K-1)
        if scale == 0:
            continue  # identical folds: see test_choose
        p = 2 * stats.t.sf(abs(d.mean() / scale), 2)
        assert (row["diff_vs_best"], row["p"]) == pytest.approx((d.mean(), p), rel=1e-9)
        assert row["tied"] == (p >= 0.05)
    summary = _summary(report_dir)
    assert summary["simplest trial (1-SE rule)"] in {str(n) for n in table.loc[table["within_1se"], "trial"]}
    md = (report_dir / "report.md").read_text()
    assert "## Is the best really the best?" in md and "corrected resampled t-test" in md
    assert "![" in md and "(top_trials.png)" in md and "(pareto.png)" in md


@pytest.fixture(scope="module")
def hand_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the hand-made study of test_choose."""
    folder = tmp_path_factory.mktemp("hand")
    make_study(folder / "study.db")
    assert _report(folder / "study.db", folder / "r") == 0
    return folder / "r"


def test_the_hand_made_study_marks_the_ties_and_names_the_simplest(hand_report: Path) -> None:
    table = _csv(hand_report / "comparison.csv").set_index("trial")
    assert table.index.tolist() == [3, 2, 0, 6, 4, 1]  # trial 5 lacks a fold, and the pruned one is out
    assert set(table.index[table["tied"]]) == TIED and set(table.index[table["within_1se"]]) == WITHIN_1SE
    assert table.loc[BEST, "choice"] == "best" and table.loc[SIMPLEST, "choice"] == "simplest (1-SE)"
    assert table["choice"].isna().sum() == len(table) - 2
    assert table.loc[SIMPLEST, "macs"] == 4_000 and set(table.index[table["n_params"].isna()]) == {6}
    summary = _summary(hand_report)
    assert summary["simplest trial (1-SE rule)"] == str(SIMPLEST) and summary["best trial"] == str(BEST)
    assert summary["trials tied with the best"] == str(len(TIED) - 1)
    md = " ".join((hand_report / "report.md").read_text().split())
    assert f"trial {SIMPLEST} has the fewest parameters (2,000): hpsearch final-test simplest" in md
    assert "Left out: complete trials 5" in md
    page = (hand_report / "report.html").read_text()
    section = page.split('<section id="comparison">')[1].split("</section>")[0]
    assert len(re.findall(r'<img src="data:image/png;base64,', section)) == 2
    for name in ("top_trials.png", "pareto.png"):
        height, width = matplotlib.image.imread(hand_report / name).shape[:2]
        assert height > 300 and width > 500


def test_the_comparison_table_keeps_the_top_and_the_simplest(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study.db")
    defn, data = stored_run(study)
    report = build_report(study, defn, data, compared=2)
    assert report.comparison is not None and report.choice is not None
    assert report.comparison["trial"].tolist() == [3, 2, 0]  # the top two, then the simplest, ranked third
    assert len(report.choice.table) == 6  # the pictures and JSON see every comparable trial


def test_a_loss_study_compares_lower_as_better(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_study(tmp_path / "study.db", metric="loss")
    capsys.readouterr()
    assert _report(tmp_path / "study.db", tmp_path / "r", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["choice"]["best"], doc["choice"]["simplest"]) == (BEST, SIMPLEST)
    assert set(doc["choice"]["tied"]) == TIED
    rows = {row["trial"]: row for row in doc["comparison"]}
    assert rows[1]["diff_vs_best"] > 0 and rows[1]["loss_mean"] > rows[BEST]["loss_mean"]  # worse: a higher loss
