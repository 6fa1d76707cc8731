"""Seeded stratified K-fold splits of the training rows; K fold-models trained side by side; fold figures.

Every trial of a study is scored on the same K folds (one seeded split), so fold figures are
paired across trials. Rows grouped by a table's group column keep each group in one fold
(``StratifiedGroupKFold``). The test rows never enter here: callers pass the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import nn

from hpsearch.config import FIGURES, CVConfig, TrainConfig, derive
from hpsearch.config.seeds import Role
from hpsearch.data import Dataset, preprocess
from hpsearch.errors import ConfigError
from hpsearch.training.evaluate import as_tensors, evaluate
from hpsearch.training.folds import WaveCallback, fit_folds
from hpsearch.training.metrics import classification_metrics
from hpsearch.training.model import StackedMLP
from hpsearch.training.trainer import EpochCallback

Split = tuple[np.ndarray, np.ndarray]  # (training-fold rows, validation-fold rows)


@dataclass(frozen=True)
class Member:
    """One fold-model as it was trained, with a table's preprocessing as its fold fitted it."""

    model: nn.Sequential  # a ``build_mlp`` network on the CPU, in eval mode
    fitted: ColumnTransformer | None  # fitted on the fold's training rows alone; None: no table


@dataclass(frozen=True)
class CVResult:
    """The figures of every fold, in fold order, and their mean and standard deviation."""

    folds: list[dict[str, float]]
    members: list[Member] | None = None  # each fold's model and preprocessing, when asked for (``keep_models``)

    @property
    def mean(self) -> dict[str, float]:
        return summarize(self.folds)[0]

    @property
    def std(self) -> dict[str, float | None]:
        return summarize(self.folds)[1]


def summarize(folds: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float | None]]:
    """Mean and sample standard deviation (ddof=1) of each figure every fold holds, over the folds.

    The std is None with fewer than two folds (a trial pruned after its first fold). A figure
    some fold lacks (ROC AUC of more than two classes) is left out.
    """
    names = [k for k in FIGURES if all(k in f for f in folds)]
    table = np.array([[f[k] for k in names] for f in folds], dtype=np.float64)
    mean = dict(zip(names, table.mean(axis=0).tolist(), strict=True))
    if len(folds) < 2:
        return mean, dict.fromkeys(names)
    return mean, dict(zip(names, table.std(axis=0, ddof=1).tolist(), strict=True))


def make_splits(
    y: np.ndarray,
    cfg: CVConfig,
    classes: tuple[str, ...] | None = None,
    groups: np.ndarray | None = None,
    *,
    role: Role = "folds",
) -> list[Split]:
    """Stratified, shuffled, seeded K-fold splits of the rows of ``y``, ``cfg.repeats`` times over.

    Repeat r's K folds are splits r*K .. r*K + K-1; each repeat shuffles with a seed stream of its
    own, and repeat 0 takes the stream a study without repeats takes, so ``repeats = 1`` is the
    split it always was. With ``groups`` (each row's group), ``StratifiedGroupKFold``: every
    group's rows lie in one validation fold of each repeat, and the classes are spread as evenly as
    the groups allow (it shuffles only groups of alike class mixes, so repeats may differ little).
    ``role`` names the seed stream: a study's folds, or nested CV's outer folds (``"outer"``).

    Raises:
        ConfigError: K is larger than the smallest class, so a fold would miss it; with groups, K is
            more than the groups, or a fold's training or validation rows miss a class.
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
    if groups is not None and (n_groups := len(np.unique(groups))) < cfg.folds:
        raise ConfigError(
            f"--folds {cfg.folds} is more than the {n_groups} groups of the training split; "
            f"use at most --folds {n_groups}, or a table of more groups"
        )
    splits: list[Split] = []
    for r in range(cfg.repeats):
        seed = derive(cfg.seed, role) if r == 0 else derive(cfg.seed, role, r)
        if groups is None:
            splits += StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        else:
            splits += StratifiedGroupKFold(n_splits=cfg.folds, shuffle=True, random_state=seed).split(y, y, groups)
    if groups is not None:
        _check_classes(y, groups, splits, cfg, classes)
    return splits


def _check_classes(
    y: np.ndarray, groups: np.ndarray, splits: list[Split], cfg: CVConfig, classes: tuple[str, ...] | None
) -> None:
    """Refuse grouped folds whose training or validation rows miss a class (its groups are too few).

    Raises:
        ConfigError: naming the fold, the class and how many groups hold it.
    """
    for i, (train_rows, val_rows) in enumerate(splits):
        for part, rows in (("training", train_rows), ("validation", val_rows)):
            missing = np.setdiff1d(np.unique(y), np.unique(y[rows]))
            if len(missing):
                c, (r, k) = int(missing[0]), divmod(i, cfg.folds)
                label, held = classes[c] if classes else str(c), len(np.unique(groups[y == c]))
                repeat = f" (repeat {r + 1} of {cfg.repeats})" if cfg.repeats > 1 else ""
                raise ConfigError(
                    f"fold {k + 1} of {cfg.folds}{repeat} has no {part} row of class {label!r}: its rows lie in "
                    f"{held} group{'s' * (held != 1)}, too few to reach every fold; use fewer --folds"
                )


def cross_validate(
    train_split: Dataset,
    splits: list[Split],
    train: TrainConfig,
    *,
    on_epoch: EpochCallback | None = None,
    score_every_epoch: bool = False,
    waves: list[list[int]] | None = None,
    on_wave: WaveCallback | None = None,
    keep_models: bool = False,
) -> CVResult:
    """Train one model per fold on the other folds and score it on its own, all K side by side (``fit_folds``).

    Args:
        train_split: the training split (the search never holds the test split).
        splits: from ``make_splits``.
        train: the trial's training configuration; fold k trains from fold k's seed stream.
        on_epoch: called after every epoch with the per-fold training losses and, when
            ``score_every_epoch``, the per-fold validation figures (a pruner may raise here).
        score_every_epoch: evaluate the validation folds after every epoch, not only the last.
        waves, on_wave: train the folds in waves, with a say after each (see ``folds.fit_folds``).
        keep_models: return each fold's trained model and fitted preprocessing (a fold-ensemble's members).

    Returns:
        The loss and ``classification_metrics`` on every validation fold trained, after its last epoch.
    """
    x, y, folds, val, fitted = _fold_tensors(train_split, splits, train.device)
    n_classes = train_split.n_classes

    def score(k: int, model: StackedMLP) -> dict[str, float]:
        loss, pred, proba = evaluate(model, *val[k])
        return {"loss": loss, **classification_metrics(train_split.y[splits[k][1]], pred, n_classes, proba)}

    kept: dict[int, nn.Sequential] | None = {} if keep_models else None
    figures = fit_folds(
        x, y, folds, n_classes, train, score,
        on_epoch=on_epoch, score_every_epoch=score_every_epoch, waves=waves, on_wave=on_wave, keep=kept,
    )  # fmt: skip
    if kept is None:
        return CVResult(figures)
    return CVResult(figures, [Member(kept[k], fitted[k] if fitted else None) for k in sorted(kept)])


def _fold_tensors(
    data: Dataset, splits: list[Split], device: str
) -> tuple[
    torch.Tensor, torch.Tensor, list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]], list[ColumnTransformer]
]:
    """The rows every fold trains from, each fold's training rows in them, each fold's validation set, and
    each fold's fitted preprocessing (none without a table).

    Every fold gathers its batches from the one training split, no copy per fold, unless the
    data are a table: each fold's preprocessing (imputation, one-hot encoding, scaling) is fitted
    on its training rows only and then applied to its validation rows, so each fold trains on
    its own copy.
    """
    if data.table is None:
        x, y = as_tensors(data.x, data.y, device)
        folds = [torch.from_numpy(rows).to(device) for rows, _ in splits]
        return x, y, folds, [as_tensors(data.x[v], data.y[v], device) for _, v in splits], []
    table = data.table
    fitted = [preprocess.fit(table, rows) for rows, _ in splits]
    parts = [preprocess.inputs(f, table, rows) for f, (rows, _) in zip(fitted, splits, strict=True)]
    x, y = as_tensors(np.concatenate(parts), np.concatenate([data.y[rows] for rows, _ in splits]), device)
    ends = np.cumsum([len(rows) for rows, _ in splits]).tolist()
    folds = [torch.arange(end - len(rows), end, device=device) for end, (rows, _) in zip(ends, splits, strict=True)]
    val = [
        as_tensors(preprocess.inputs(f, table, v), data.y[v], device) for f, (_, v) in zip(fitted, splits, strict=True)
    ]
    return x, y, folds, val, fitted
