"""Seeded stratified K-fold splits of the training rows; one fit per fold; fold figures.

Every trial of a study is scored on the same K folds (one seeded split), so fold figures are
paired across trials. The test rows never enter here: callers pass the training split only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from hpsearch.config import CVConfig, TrainConfig
from hpsearch.data import Dataset
from hpsearch.errors import ConfigError
from hpsearch.metrics import METRIC_NAMES, classification_metrics
from hpsearch.train import evaluate, fit

FIGURES = ("loss", *METRIC_NAMES)  # loss first, then the metrics people read
Split = tuple[np.ndarray, np.ndarray]  # (training-fold rows, validation-fold rows)
FoldCallback = Callable[[int, dict[str, float]], None]  # (fold index, its figures)
EpochCallback = Callable[[int, int, float], None]  # (fold index, epoch index, training loss)


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
    on_fold: FoldCallback | None = None,
) -> CVResult:
    """Train one model per fold on the other folds and score it on its own.

    Args:
        data: the data set; only its training split is used.
        splits: from ``make_splits``.
        train: the trial's training configuration; fold k trains with seed ``train.seed + k``.
        on_epoch: progress hook, called after every epoch of every fold.
        on_fold: called with each fold's figures as soon as they exist (a pruner may raise
            from here to stop the trial).

    Returns:
        Loss, accuracy, precision, recall and F1 on every validation fold.
    """
    folds: list[dict[str, float]] = []
    for k, (train_rows, val_rows) in enumerate(splits):
        x_fit, x_val = data.x_train[train_rows], data.x_train[val_rows]
        if data.standardize:  # fitted preprocessing sees the training folds only
            scaler = StandardScaler().fit(x_fit)
            x_fit, x_val = scaler.transform(x_fit), scaler.transform(x_val)
        device = torch.device(train.device)
        xt = torch.as_tensor(x_fit, dtype=torch.float32, device=device)
        yt = torch.as_tensor(data.y_train[train_rows], device=device)
        xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
        yv = torch.as_tensor(data.y_train[val_rows], device=device)
        epoch_hook = None if on_epoch is None else (lambda e, loss, k=k: on_epoch(k, e, loss))
        model = fit(xt, yt, data.n_classes, replace(train, seed=train.seed + k), epoch_hook)
        loss, pred = evaluate(model, xv, yv)
        figures = {"loss": loss, **classification_metrics(data.y_train[val_rows], pred, data.n_classes)}
        folds.append(figures)
        if on_fold is not None:
            on_fold(k, figures)
    return CVResult(folds)
