"""What a final test leaves behind: its entry in the study's list, under the study's lock, and final_test.json."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from hpsearch.analysis.intervals import LEVEL, RESAMPLES
from hpsearch.config import TrainConfig
from hpsearch.data.preprocess import Fitted
from hpsearch.errors import StorageError
from hpsearch.store import STORAGE_ERRORS, first_line, redact, study_locked
from hpsearch.store.schema import STUDY_FINAL_TESTS, TRIAL_MEAN, TRIAL_STD, library_versions


@dataclass(frozen=True)
class Scores:
    """What the one evaluation on the test split gave."""

    loss: float  # mean cross-entropy: what training minimised, kept apart from the metrics
    metrics: dict[str, float]  # accuracy, macro precision, recall, F1, balanced accuracy (ROC AUC: two classes)
    per_class: list[dict[str, Any]]  # class, precision, recall, f1, support
    confusion: np.ndarray  # rows: true class, columns: predicted class
    # figure -> its 95% interval: a seeded bootstrap over the test rows (analysis.intervals)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    wilson: tuple[float, float] | None = None  # Wilson's 95% interval of the accuracy


def record(
    study: optuna.Study,
    trial: FrozenTrial,
    cfg: TrainConfig,
    scores: Scores,
    fingerprint: str,
    folder: str,
    url: str,
    model: str = "retrain",
) -> dict[str, Any]:
    """Append this evaluation to the study's list and return the entry, with its running count.

    ``model`` names the final model the definition declared: ``retrain`` or ``fold-ensemble``.

    Under the study's lock, and from a fresh read of the list: two final tests of one study that
    end together both stay on it.
    """
    try:
        with study_locked(url, study.study_name):
            return _append_final_test(study, trial, cfg, scores, fingerprint, folder, model)
    except STORAGE_ERRORS as e:
        raise StorageError(f"cannot record the final test in {redact(url)}: {first_line(e)}") from None


def _append_final_test(
    study: optuna.Study, trial: FrozenTrial, cfg: TrainConfig, scores: Scores, fingerprint: str, folder: str, model: str
) -> dict[str, Any]:
    before = list(study.user_attrs.get(STUDY_FINAL_TESTS, []))  # read from the storage, not a cache
    entry = {
        "trial": trial.number,
        "model": model,
        "params": trial.params,
        "test": {"loss": scores.loss, **scores.metrics},
        "test_ci": {k: list(v) for k, v in scores.intervals.items()},  # 95%, bootstrap over the test rows
        "cv_mean": trial.user_attrs.get(TRIAL_MEAN, {}),
        "cv_std": trial.user_attrs.get(TRIAL_STD, {}),
        "n_test_evaluations": len(before) + 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": cfg.seed,
        "fingerprint": fingerprint,
        "device": cfg.device,
        "out": folder,
    }
    study.set_user_attr(STUDY_FINAL_TESTS, [*before, entry])
    return entry


def document(
    study_name: str,
    cfg: TrainConfig,
    stored: dict[str, Any],
    scores: Scores,
    fitted: Fitted | None,
    entry: dict[str, Any],
) -> dict[str, Any]:
    """The content of final_test.json: enough to reproduce and to read every figure."""
    mean, std, ci = entry["cv_mean"], entry["cv_std"], scores.intervals
    names = list(scores.metrics)  # the metrics of this data (ROC AUC: two classes)
    doc: dict[str, Any] = {
        "study": study_name,
        **{k: entry[k] for k in ("trial", "params", "seed", "device", "fingerprint", "n_test_evaluations", "created")},
        "model": entry.get("model", "retrain"),  # the final model the definition declared
        "train": {k: v for k, v in asdict(cfg).items() if k != "device"},
        "data": {k: v for k, v in stored.items() if k != "fingerprint"},  # verified: these are the rows
        "loss": {
            "name": "cross-entropy",
            "test": scores.loss,
            "test_ci": list(ci.get("loss", (None, None))),
            "cv_mean": mean.get("loss"),
            "cv_std": std.get("loss"),
        },
        "metrics": {
            "test": scores.metrics,
            "test_ci": {k: list(ci.get(k, (None, None))) for k in names},
            "cv_mean": {k: mean.get(k) for k in names},  # None: a trial stored before the metric existed
            "cv_std": {k: std.get(k) for k in names},
        },
        "intervals": {
            "level": LEVEL,
            "method": f"percentile bootstrap over the test rows, {RESAMPLES} resamples, seed {cfg.seed}",
            "bootstrap": {k: list(v) for k, v in ci.items()},
            "accuracy_wilson": None if scores.wilson is None else list(scores.wilson),
        },
        "per_class": scores.per_class,
        "confusion_matrix": {"rows": "true class", "columns": "predicted class", "matrix": scores.confusion.tolist()},
        "versions": {"python": platform.python_version()} | library_versions(),
    }
    if fitted is not None:  # model.pt expects a table's preprocessed inputs; this is how
        doc["preprocessing"] = fitted.to_dict()
    return doc
