"""Seeded stratified K-fold splits of the training rows; K fold-models trained together; fold figures.

Every trial of a study is scored on the same K folds (one seeded split), so fold figures are
paired across trials. The test rows never enter here: callers pass the training split only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from hpsearch.config import CVConfig, TrainConfig
from hpsearch.data import Dataset
from hpsearch.errors import ConfigError
from hpsearch.metrics import METRIC_NAMES, classification_metrics
from hpsearch.stacked import StackedMLP, evaluate_stacked, fit_stacked, stack
from hpsearch.train import as_tensors

FIGURES = ("loss", *METRIC_NAMES)  # loss first, then the metrics people read
Split = tuple[np.ndarray, np.ndarray]  # (training-fold rows, validation-fold rows)
# (epoch, per-fold training loss, per-fold validation figures or None when not scored)
EpochCallback = Callable[[int, list[float], list[dict[str, float]] | None], None]


@dataclass(frozen=True)
class CVResult:
    """The figures of every fold, in fold order, and their mean and standard deviation."""

    folds: list[dict[str, float]]

    @property
    def mean(self) -> dict[str, float]:
        return summarize(self.folds)[0]

    @property
    def std(self) -> dict[str, float | None]:
        return summarize(self.folds)[1]


def summarize(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float | None]]:
    """Mean and sample standard deviation (ddof=1) of each figure over the folds.

    The std is None with fewer than two folds (a trial pruned after its first fold).
    """
    table = np.array([[f[k] for k in FIGURES] for f in folds], dtype=np.float64)
    mean = dict(zip(FIGURES, table.mean(axis=0).tolist(), strict=True))
    if len(folds) < 2:
        return mean, dict.fromkeys(FIGURES)
    return mean, dict(zip(FIGURES, table.std(axis=0, ddof=1).tolist(), strict=True))


def make_splits(y: np.ndarray, cfg: CVConfig, classes: tuple[str, ...] | None = None) -> list[Split]:
    """Stratified, shuffled, seeded K-fold splits of the rows of ``y``.

    Raises:
        ConfigError: K is larger than the smallest class, so a fold would miss it.
    """
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < cfg.folds:
        label = classes[smallest] if classes else str(smallest)
        raise ConfigError(
            f"--folds {cfg.folds} is larger than the smallest class ({label!r}: {counts[smallest]} training rows); "
            f"use at most --folds {counts[smallest]}"
        )
    kfold = StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    return list(kfold.split(np.zeros(len(y)), y))


def cross_validate(
    data: Dataset,
    splits: list[Split],
    train: TrainConfig,
    *,
    on_epoch: EpochCallback | None = None,
    score_every_epoch: bool = False,
) -> CVResult:
    """Train one model per fold on the other folds and score it on its own; all K together.

    Args:
        data: the data set; only its training split is used.
        splits: from ``make_splits``.
        train: the trial's training configuration; fold k trains with seed ``train.seed + k``.
        on_epoch: called after every epoch with the per-fold training losses and, when
            ``score_every_epoch``, the per-fold validation figures (a pruner may raise here).
        score_every_epoch: evaluate the validation folds after every epoch, not only the last.

    Returns:
        Loss, accuracy, precision, recall and F1 on every validation fold after the last epoch.
    """
    fit_parts, val_parts = [], []
    for train_rows, val_rows in splits:
        x_fit, x_val = data.x_train[train_rows], data.x_train[val_rows]
        if data.standardize:  # fitted preprocessing sees the training folds only
            scaler = StandardScaler().fit(x_fit)
            x_fit, x_val = scaler.transform(x_fit), scaler.transform(x_val)
        fit_parts.append(as_tensors(x_fit, data.y_train[train_rows], train.device))
        val_parts.append(as_tensors(x_val, data.y_train[val_rows], train.device))
    x, counts = stack([xt for xt, _ in fit_parts])
    y, _ = stack([yt for _, yt in fit_parts])
    xv, val_counts = stack([xt for xt, _ in val_parts])
    yv, _ = stack([yt for _, yt in val_parts])
    truth = [data.y_train[rows] for _, rows in splits]

    def score(model: StackedMLP) -> list[dict[str, float]]:
        results = evaluate_stacked(model, xv, yv, val_counts)
        return [
            {"loss": loss, **classification_metrics(t, pred, data.n_classes)}
            for (loss, pred), t in zip(results, truth, strict=True)
        ]

    def hook(epoch: int, losses: list[float], model: StackedMLP) -> None:
        if on_epoch is not None:
            on_epoch(epoch, losses, score(model) if score_every_epoch else None)

    model = fit_stacked(x, y, counts, data.n_classes, train, hook)
    return CVResult(score(model))
