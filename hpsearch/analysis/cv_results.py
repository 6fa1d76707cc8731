"""A study's trials as scikit-learn's ``cv_results_``: one entry per trial, in trial order, in scikit-learn's keys.

scikit-learn's keys (``params``, ``param_<name>``, ``split<k>_test_score``, ``mean_test_score``,
``std_test_score``, ``rank_test_score``, ``mean_fit_time``) hold the study metric; hpsearch's own
keys hold every figure apart, the loss too (``split<k>_test_<figure>``, ``mean_test_<figure>``,
``std_test_<figure>``), and the trial's ``trial`` number, ``state`` and ``reason`` (why it was
pruned or failed). Only a complete trial has a mean and a rank: a pruned trial's folds keep what
they reached, but its mean would compare figures of fewer folds or epochs than the others'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import FIGURES
from hpsearch.store.schema import STATE_WORDS, TRIAL_FOLDS, TRIAL_REASON


def cv_results(trials: list[FrozenTrial], metric: str, folds: int, *, maximize: bool) -> dict[str, Any]:
    """``cv_results_`` of ``trials`` (in that order), scored by ``metric`` on ``folds`` folds.

    ``std_test_*`` is over the folds with ddof=0, as scikit-learn's; ``rank_test_score`` ranks the
    complete trials, best 1 (ties share the better rank), and puts every other trial after them.
    """
    out: dict[str, Any] = {"params": [dict(t.params) for t in trials]}
    for name in sorted({name for t in trials for name in t.params}):
        values = [t.params.get(name) for t in trials]
        out[f"param_{name}"] = np.ma.masked_array(values, mask=[name not in t.params for t in trials], dtype=object)
    figures = _figures(trials, folds)
    nothing = np.full(len(trials), np.nan)
    for k in range(folds):
        out[f"split{k}_test_score"] = figures.get(f"split{k}_test_{metric}", nothing)
    out["mean_test_score"] = figures.get(f"mean_test_{metric}", nothing)
    out["std_test_score"] = figures.get(f"std_test_{metric}", nothing)
    out["rank_test_score"] = _ranks(out["mean_test_score"], maximize=maximize)
    out["mean_fit_time"] = np.array([_fit_time(t, folds) for t in trials])
    out |= figures  # hpsearch's own keys after scikit-learn's: every figure apart, then the trial's state
    out["trial"] = np.array([t.number for t in trials], dtype=np.int64)
    out["state"] = np.array([STATE_WORDS[t.state] for t in trials], dtype=object)
    out["reason"] = np.array([str(t.user_attrs.get(TRIAL_REASON, "")) for t in trials], dtype=object)
    return out


def _figures(trials: list[FrozenTrial], folds: int) -> dict[str, np.ndarray]:
    """``split<k>_test_<figure>``, ``mean_test_<figure>`` and ``std_test_<figure>`` of every figure a fold stored;
    the mean and std of complete trials only."""
    tables = [_fold_table(t, folds) for t in trials]
    complete = np.array([t.state == TrialState.COMPLETE for t in trials], dtype=bool)
    out: dict[str, np.ndarray] = {}
    for figure in [f for f in FIGURES if any(f in row for rows in tables for row in rows)]:
        table = np.array([[row.get(figure, np.nan) for row in rows] for rows in tables], dtype=np.float64)
        table = table.reshape(len(trials), folds)
        for k in range(folds):
            out[f"split{k}_test_{figure}"] = table[:, k]
        out[f"mean_test_{figure}"] = np.where(complete, _mean(table), np.nan)
        out[f"std_test_{figure}"] = np.where(complete, _std(table), np.nan)
    return out


def _fold_table(trial: FrozenTrial, folds: int) -> list[dict[str, float]]:
    """The figures of each of the ``folds`` folds the trial stored (an empty dict for a fold not reached)."""
    stored: list[dict[str, float]] = list(trial.user_attrs.get(TRIAL_FOLDS, []))
    return [*stored[:folds], *([{}] * (folds - len(stored)))]


def _mean(table: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(table.mean(axis=1))


def _std(table: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(table.std(axis=1))


def _ranks(score: np.ndarray, *, maximize: bool) -> np.ndarray:
    """Rank 1 for the best score, ties sharing the better rank; NaN scores after every number."""
    key = np.where(np.isnan(score), np.inf, -score if maximize else score)
    order = np.sort(key)
    return np.searchsorted(order, key, side="left").astype(np.int32) + 1


def _fit_time(trial: FrozenTrial, folds: int) -> float:
    """Seconds the trial took per fold (its folds trained together: the trial's time shared among them)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return float("nan")
    return (trial.datetime_complete - trial.datetime_start).total_seconds() / max(1, folds)
