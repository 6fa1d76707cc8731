"""Retrain the chosen trial on the whole training split and score it once on the test split.

Pipeline of ``run_final_test``: open the study -> choose the trial -> load the data and prove it
is the study's (fingerprint) -> retrain with the trial's params and the definition's seed ->
evaluate once on the test split -> count that evaluation on the study -> write the files -> print.
The test split is meant to be looked at once; every run is counted, and runs after the first
warn that their figure is no longer an unbiased estimate.
"""

from __future__ import annotations

import csv
import json
import platform
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import sqlalchemy.exc
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, precision_recall_fscore_support
from sklearn.preprocessing import StandardScaler

from hpsearch import __version__
from hpsearch.choose import choose
from hpsearch.config import TrainConfig
from hpsearch.data import Dataset, load
from hpsearch.errors import ConfigError, DefinitionMismatch, StorageError, TrainingDiverged
from hpsearch.metrics import METRIC_NAMES, classification_metrics
from hpsearch.space import from_params
from hpsearch.storage import (
    STUDY_FINAL_TESTS,
    TRIAL_MEAN,
    TRIAL_REASON,
    TRIAL_STD,
    fold_scores,
    load_study,
    redact,
    stored_run,
)
from hpsearch.text import mean_std
from hpsearch.train import as_tensors, evaluate, fit, resolve_device, save_weights
from hpsearch.workers import study_locked

if TYPE_CHECKING:
    from torch.nn import Module


@dataclass(frozen=True)
class Scores:
    """What the one evaluation on the test split gave."""

    loss: float  # mean cross-entropy: what training minimised, kept apart from the metrics
    metrics: dict[str, float]  # accuracy and macro precision, recall, F1
    per_class: list[dict[str, Any]]  # class, precision, recall, f1, support
    confusion: np.ndarray  # rows: true class, columns: predicted class


def run_final_test(
    url: str,
    study_name: str | None,
    which: str,
    *,
    out_dir: Path | None = None,
    device: str = "auto",
    console: Console | None = None,
    err_console: Console | None = None,
) -> dict[str, Any]:
    """Retrain trial ``which`` of a study on the training split, score it on the test split, save it all.

    Args:
        url: Optuna storage URL of the study.
        study_name: the study; None: the only one in the storage.
        which: ``best`` (by the study's metric and direction), ``simplest`` (the fewest parameters
            within one standard error of the best; see ``choose_trial``) or a trial number.
        out_dir: folder for the files; None: ``reports/<study-name>/final-test/``.
        device: ``auto``, ``cpu`` or ``cuda``.
        console, err_console: where tables and the repeat warning go.

    Returns:
        The document written to ``final_test.json``.

    Raises:
        HpsearchError: no such storage, study or trial; a trial that is not complete; data whose
            fingerprint differs from the study's; an unwritable folder; a diverging retrain.
    """
    console = console or Console()
    err_console = err_console or Console(stderr=True)
    study = load_study(url, study_name)
    defn, stored = stored_run(study)
    trial = choose_trial(study, which)
    data = load(defn.data)
    check_data(data, stored, study.study_name)
    cfg = from_params(trial.params, replace(defn.train, device=resolve_device(device)))
    folder = _prepare(out_dir or Path("reports") / study.study_name / "final-test")
    model, scaler = retrain(data, cfg, trial.number)
    scores = score(model, data, scaler, tuple(stored["classes"]))
    entry = _record(study, trial, cfg, scores, data.fingerprint(), folder, url)
    doc = _document(study.study_name, cfg, stored, scores, scaler, entry)
    _write(folder, model, doc, scores)
    _show(console, doc, scores, folder)
    if entry["n_test_evaluations"] > 1:
        err_console.print(
            f"warning: the test split of study {study.study_name!r} has now been used {entry['n_test_evaluations']} "
            "times; choosing or re-choosing a model by test results makes the test figure optimistic, because the "
            "test rows then take part in the choice instead of judging it",
            markup=False,
        )
    return doc


def choose_trial(study: optuna.Study, which: str) -> FrozenTrial:
    """The complete trial ``which`` names: ``best``, ``simplest`` or a trial number.

    ``simplest`` is the one-standard-error choice of ``choose.choose``: of the complete trials
    whose CV mean is within one standard error of the best's, the one with the fewest parameters.

    Raises:
        ConfigError: no complete trial, not a number, no such trial, or a trial that is not complete.
    """
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if which in ("best", "simplest") and not complete:
        counts = Counter(_word(t.state) for t in trials)
        states = ", ".join(f"{n} {word}" for word, n in counts.items()) or "no trials"
        raise ConfigError(f"study {study.study_name!r} has no complete trial to test ({states}); run hpsearch study")
    if which == "best":
        return study.best_trial
    if which == "simplest":
        return _simplest(study, complete)
    try:
        number = int(which)
    except ValueError:
        raise ConfigError(f"which trial: give 'best', 'simplest' or a trial number, but got {which!r}") from None
    found = [t for t in trials if t.number == number]
    if not found:
        span = f"its trials are numbered 0 to {len(trials) - 1}" if trials else "it holds no trial"
        raise ConfigError(f"no trial {number} in study {study.study_name!r}: {span}")
    trial = found[0]
    if trial.state != TrialState.COMPLETE:
        reason = trial.user_attrs.get(TRIAL_REASON, "no reason stored")
        best = f" (the best is trial {study.best_trial.number})" if complete else ""
        raise ConfigError(
            f"trial {number} of study {study.study_name!r} is {_word(trial.state)}: {reason}; "
            f"only a complete trial can be final-tested{best}"
        )
    return trial


def _simplest(study: optuna.Study, complete: list[FrozenTrial]) -> FrozenTrial:
    defn, _ = stored_run(study)
    choice = choose(
        *fold_scores(complete, defn.metric),
        folds=defn.cv.folds,
        maximize=defn.direction == "maximize",
    )
    if choice is None:
        raise ConfigError(
            f"no complete trial of study {study.study_name!r} has a score on each of its {defn.cv.folds} folds, "
            "so none is within one standard error of the best; give 'best' or a trial number"
        )
    return next(t for t in complete if t.number == choice.simplest)


def check_data(data: Dataset, stored: dict[str, Any], study_name: str) -> None:
    """Refuse data whose fingerprint is not the one the study recorded.

    Raises:
        DefinitionMismatch: the rows of either split differ from those the study searched on.
    """
    if stored.get("fingerprint") == data.fingerprint():
        return
    raise DefinitionMismatch(
        f"the data differ from study {study_name!r}'s: it was run on {stored.get('n_train')} + {stored.get('n_test')} "
        f"rows, fingerprint {str(stored.get('fingerprint'))[:12]}; {data.name} now gives {len(data.y_train)} + "
        f"{len(data.y_test)} rows, fingerprint {data.fingerprint()[:12]}; final-test needs the study's own rows"
    )


def retrain(data: Dataset, cfg: TrainConfig, number: int) -> tuple[Module, StandardScaler | None]:
    """Fit the trial's MLP on every training row; the scaler is fitted on those rows only.

    Raises:
        ConfigError: the training loss became NaN or infinite.
    """
    x = data.x_train
    scaler = StandardScaler().fit(x) if data.standardize else None
    if scaler is not None:
        x = scaler.transform(x)
    xt, yt = as_tensors(x, data.y_train, cfg.device)
    try:
        return fit(xt, yt, data.n_classes, cfg), scaler
    except TrainingDiverged as e:
        raise ConfigError(f"retraining trial {number} on the whole training split diverged: {e}") from None


def score(model: Module, data: Dataset, scaler: StandardScaler | None, classes: tuple[str, ...]) -> Scores:
    """Evaluate ``model`` once on the test split: loss, metrics, per-class table, confusion matrix."""
    x = data.x_test if scaler is None else scaler.transform(data.x_test)
    xt, yt = as_tensors(x, data.y_test, str(next(model.parameters()).device))
    loss, pred = evaluate(model, xt, yt)
    labels = np.arange(data.n_classes)  # every class, so one never predicted still gets its row
    precision, recall, f1, support = precision_recall_fscore_support(
        data.y_test, pred, labels=labels, average=None, zero_division=0
    )
    per_class = [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]
    confusion = confusion_matrix(data.y_test, pred, labels=labels)
    return Scores(loss, classification_metrics(data.y_test, pred, data.n_classes), per_class, confusion)


def _word(state: TrialState) -> str:
    return "failed" if state == TrialState.FAIL else state.name.lower()


def _prepare(folder: Path) -> Path:
    # before training, so an unwritable folder costs nothing and does not use up the test split
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write to {folder}: {e.strerror or e}") from None
    return folder


def _record(
    study: optuna.Study, trial: FrozenTrial, cfg: TrainConfig, scores: Scores, fingerprint: str, folder: Path, url: str
) -> dict[str, Any]:
    """Append this evaluation to the study's list and return the entry, with its running count.

    Under the study's lock, and from a fresh read of the list: two final tests of one study that
    end together both stay on it.
    """
    try:
        with study_locked(url, study.study_name):
            return _append_final_test(study, trial, cfg, scores, fingerprint, folder)
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise StorageError(f"cannot record the final test in {redact(url)}: {str(e).strip().splitlines()[0]}") from None


def _append_final_test(
    study: optuna.Study, trial: FrozenTrial, cfg: TrainConfig, scores: Scores, fingerprint: str, folder: Path
) -> dict[str, Any]:
    before = list(study.user_attrs.get(STUDY_FINAL_TESTS, []))  # read from the storage, not a cache
    entry = {
        "trial": trial.number,
        "params": trial.params,
        "test": {"loss": scores.loss, **scores.metrics},
        "cv_mean": trial.user_attrs.get(TRIAL_MEAN, {}),
        "cv_std": trial.user_attrs.get(TRIAL_STD, {}),
        "n_test_evaluations": len(before) + 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": cfg.seed,
        "fingerprint": fingerprint,
        "device": cfg.device,
        "out": str(folder),
    }
    study.set_user_attr(STUDY_FINAL_TESTS, [*before, entry])
    return entry


def _document(
    study_name: str,
    cfg: TrainConfig,
    stored: dict[str, Any],
    scores: Scores,
    scaler: StandardScaler | None,
    entry: dict[str, Any],
) -> dict[str, Any]:
    """The content of final_test.json: enough to reproduce and to read every figure."""
    mean, std = entry["cv_mean"], entry["cv_std"]
    doc: dict[str, Any] = {
        "study": study_name,
        **{k: entry[k] for k in ("trial", "params", "seed", "device", "fingerprint", "n_test_evaluations", "created")},
        "train": {k: v for k, v in asdict(cfg).items() if k != "device"},
        "data": {k: v for k, v in stored.items() if k != "fingerprint"},  # verified: these are the rows
        "loss": {"name": "cross-entropy", "test": scores.loss, "cv_mean": mean.get("loss"), "cv_std": std.get("loss")},
        "metrics": {
            "test": scores.metrics,
            "cv_mean": {k: mean.get(k) for k in METRIC_NAMES},
            "cv_std": {k: std.get(k) for k in METRIC_NAMES},
        },
        "per_class": scores.per_class,
        "confusion_matrix": {"rows": "true class", "columns": "predicted class", "matrix": scores.confusion.tolist()},
        "versions": {"python": platform.python_version(), "hpsearch": __version__}
        | {name: version(name) for name in ("torch", "optuna", "scikit-learn", "numpy")},
    }
    if scaler is not None:  # model.pt expects standardized features; this is how
        doc["standardize"] = {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    return doc


def _write(folder: Path, model: Module, doc: dict[str, Any], scores: Scores) -> None:
    try:
        save_weights(model, folder / "model.pt")
        (folder / "final_test.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        with (folder / "per_class.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(scores.per_class[0]))
            writer.writeheader()
            writer.writerows(scores.per_class)
        _confusion_png(scores.confusion, [row["class"] for row in scores.per_class], folder / "confusion_matrix.png")
    except OSError as e:
        raise ConfigError(f"cannot write to {folder}: {e.strerror or e}") from None


def _confusion_png(confusion: np.ndarray, classes: list[str], path: Path) -> None:
    # a bare Figure renders with Agg and is never registered with pyplot, so nothing is left open
    size = max(5.0, 0.5 * len(classes))
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay(confusion, display_labels=classes).plot(ax=ax, colorbar=False, values_format="d")
    ax.set_title("confusion matrix on the test split")
    fig.savefig(path, dpi=100)


def _show(console: Console, doc: dict[str, Any], scores: Scores, folder: Path) -> None:
    data, loss, metrics = doc["data"], doc["loss"], doc["metrics"]
    console.print(
        f"final test of trial {doc['trial']} of study {doc['study']!r}: retrained on all {data['n_train']} training "
        f"rows (seed {doc['seed']}), scored once on {data['n_test']} test rows",
        markup=False,
    )
    params = [[k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in doc["params"].items()]
    test_vs_cv = ("test", "CV mean ± std")
    loss_row = ["loss", f"{loss['test']:.4f}", mean_std(loss["cv_mean"], loss["cv_std"])]
    metric_rows = [
        [k, f"{metrics['test'][k]:.4f}", mean_std(metrics["cv_mean"][k], metrics["cv_std"][k])] for k in METRIC_NAMES
    ]
    class_rows = [
        [row["class"], *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])]
        for row in scores.per_class
    ]
    console.print(_table(None, ("parameter", "value"), params))
    console.print(_table("loss: cross-entropy", ("figure", *test_vs_cv), [loss_row]))
    console.print(_table("metrics (macro average over classes)", ("metric", *test_vs_cv), metric_rows))
    console.print(_table("per class on the test split", ("class", "precision", "recall", "f1", "support"), class_rows))
    console.print(f"wrote model.pt, final_test.json, per_class.csv and confusion_matrix.png to {folder}", markup=False)


def _table(title: str | None, columns: tuple[str, ...], rows: list[list[str]]) -> Table:
    # Text cells: class names and parameter values are data, never rich markup
    table = Table(title=title, title_justify="left", min_width=50 if title else None)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table
