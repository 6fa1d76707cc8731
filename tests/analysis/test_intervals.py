"""The test figures' 95% intervals against independent computations on a fixed example."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_recall_fscore_support, roc_auc_score

from hpsearch.analysis.intervals import bootstrap, wilson

# a fixed example: 3 classes, 40 rows, 31 right
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0] * 4)
PRED = Y.copy()
PRED[[1, 4, 7, 8, 13, 20, 22, 29, 35]] = [0, 2, 0, 0, 2, 1, 1, 2, 0]
ROW_LOSS = np.linspace(0.05, 2.0, len(Y))


def test_wilson_is_scipys() -> None:
    for correct, n in [(31, 40), (0, 10), (10, 10), (900, 1000)]:
        ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(correct, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_the_bootstrap_is_a_plain_loop_over_sklearn_on_the_same_draws() -> None:
    resamples, seed, n = 300, 7, len(Y)
    got = bootstrap(Y, PRED, ROW_LOSS, 3, seed=seed, resamples=resamples)
    # the same draws, 100 resamples at a time, as bootstrap makes them; every figure by sklearn
    rng = np.random.default_rng(seed)
    draws = np.concatenate([rng.integers(0, n, size=(100, n)) for _ in range(resamples // 100)])
    names = ("loss", "accuracy", "precision", "recall", "f1", "balanced_accuracy")
    figures: dict[str, list[float]] = {k: [] for k in names}
    for idx in draws:
        y, p = Y[idx], PRED[idx]
        precision, recall, f1, _ = precision_recall_fscore_support(
            y, p, labels=[0, 1, 2], average="macro", zero_division=0
        )
        figures["loss"].append(float(ROW_LOSS[idx].mean()))
        figures["accuracy"].append(float(accuracy_score(y, p)))
        figures["precision"].append(float(precision))
        figures["recall"].append(float(recall))
        figures["f1"].append(float(f1))
        figures["balanced_accuracy"].append(float(balanced_accuracy_score(y, p)))
    for name, values in figures.items():
        assert got[name] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12), name


def test_roc_auc_of_two_classes_is_sklearns_on_the_same_draws() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(60) < 0.3).astype(np.int64)  # imbalanced: 30% positive
    p1 = np.round(np.clip(0.3 + 0.4 * y + rng.normal(0, 0.25, 60), 0, 1), 1)  # rounded: tied scores
    proba = np.stack([1 - p1, p1], axis=1)
    pred = (p1 > 0.5).astype(np.int64)
    got = bootstrap(y, pred, np.ones(60), 2, proba, seed=5, resamples=200)
    rng = np.random.default_rng(5)
    draws = np.concatenate([rng.integers(0, 60, size=(100, 60)) for _ in range(2)])
    values = [roc_auc_score(y[idx], p1[idx]) for idx in draws if 0 < y[idx].sum() < 60]
    assert got["roc_auc"] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert got["roc_auc"][0] < roc_auc_score(y, p1) < got["roc_auc"][1]
    assert "roc_auc" not in bootstrap(Y, PRED, ROW_LOSS, 3, seed=0)  # three classes: no ROC AUC


def test_the_intervals_hold_the_figure_and_are_seeded() -> None:
    first = bootstrap(Y, PRED, ROW_LOSS, 3, seed=0)
    assert first == bootstrap(Y, PRED, ROW_LOSS, 3, seed=0)
    assert first != bootstrap(Y, PRED, ROW_LOSS, 3, seed=1)
    low, high = first["accuracy"]
    assert low < 31 / 40 < high
    # about the width Wilson's interval gives
    w_low, w_high = wilson(31, 40)
    assert abs((high - low) - (w_high - w_low)) < 0.06
