"""95% intervals of the test figures: a seeded bootstrap over the test rows, and Wilson's for accuracy.

One test split of n rows gives one figure; how far it could move on another n rows of the same
source is what the interval says (about ±1.4 points of accuracy at n = 1,000 and 90 %). The
bootstrap draws ``resamples`` sets of n rows with replacement, recomputes every figure on each
(the cross-entropy from the per-row losses, the metrics from a confusion matrix of the resample,
ROC AUC from the ranks of the resample's class-1 probabilities), and takes the 2.5th and 97.5th
percentiles. Wilson's score interval for accuracy needs no
resampling and is exact enough for a proportion.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata
from scipy.stats import t as student_t

RESAMPLES = 1000
LEVEL = 0.95
_Z = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(correct: int, n: int, z: float = _Z) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``correct / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def _macro(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro precision, recall, F1 and balanced accuracy of a stack of confusion matrices
    (B, C, C), as ``training.metrics`` computes them (a class never predicted has precision 0; balanced
    accuracy is the mean recall over the classes the resample holds)."""
    diag = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    predicted, actual = confusion.sum(axis=1), confusion.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, diag / predicted, 0.0)
        recall = np.where(actual > 0, diag / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = confusion.sum(axis=(1, 2))
    return {
        "accuracy": diag.sum(axis=1) / total,
        "precision": precision.mean(axis=1),
        "recall": recall.mean(axis=1),
        "f1": f1.mean(axis=1),
        "balanced_accuracy": recall.sum(axis=1) / (actual > 0).sum(axis=1),
    }


def roc_auc(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of (B, n) two-class labels ``y`` and class-1 scores: the Mann-Whitney
    statistic over average ranks, which is ``roc_auc_score`` (ties count half); NaN with one class."""
    ranks = rankdata(score, axis=1)
    positive = y == 1
    n_pos = positive.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc: np.ndarray = ((ranks * positive).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc


def bootstrap(
    y: np.ndarray,
    pred: np.ndarray,
    row_loss: np.ndarray,
    n_classes: int,
    proba: np.ndarray | None = None,
    *,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap intervals of the loss, accuracy, macro precision, recall and F1, balanced
    accuracy, and for two classes ROC AUC.

    Args:
        y, pred: true and predicted class of each test row.
        row_loss: the cross-entropy of each test row (their mean is the test loss).
        n_classes: every class counts in the macro averages, as in the test figures.
        proba: (rows, classes) predicted probabilities; with two classes, ROC AUC gets an interval
            (a resample that draws one class has none: the percentiles are of the others).
        seed: seeds the resampling, so a final test always reports the same interval.

    Returns:
        figure -> (low, high).
    """
    n = len(y)
    rng = np.random.default_rng(seed)
    figures: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, 100):  # bounded memory: 100 resamples of n rows at a time
        idx = rng.integers(0, n, size=(min(100, resamples - start), n))
        cells = (np.arange(len(idx))[:, None] * n_classes + y[idx]) * n_classes + pred[idx]
        confusion = np.bincount(cells.ravel(), minlength=len(idx) * n_classes * n_classes)
        stats = {"loss": row_loss[idx].mean(axis=1), **_macro(confusion.reshape(len(idx), n_classes, n_classes))}
        if n_classes == 2 and proba is not None:
            stats["roc_auc"] = roc_auc(y[idx], proba[idx, 1])
        for name, values in stats.items():
            figures.setdefault(name, []).append(values)
    tail = (1 - level) / 2 * 100
    out = {}
    for name, parts in figures.items():
        values = np.concatenate(parts)
        if name == "roc_auc":  # a resample of one class has no ROC AUC
            values = values[~np.isnan(values)]
        if len(values):
            low, high = np.percentile(values, [tail, 100 - tail])
            out[name] = (float(low), float(high))
    return out


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean of ``values`` (a few independent scores, such as nested CV's outer
    folds): mean +/- t(level, n-1) * sd / sqrt(n); NaN ends with fewer than two values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    mean = float(np.mean(values))
    half = float(student_t.ppf((1 + level) / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean - half, mean + half
