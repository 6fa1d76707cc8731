"""Learning curves: each trial's mean validation score after each epoch, from what its objective reported."""

from __future__ import annotations

import pandas as pd
from optuna.trial import FrozenTrial

from hpsearch.config import Definition
from hpsearch.store.schema import STATE_WORDS


def learning_curves(trials: list[FrozenTrial], defn: Definition) -> pd.DataFrame | None:
    """Each trial's mean validation score after each epoch, as its objective reported it.

    The pruners see the mean over the K folds at step = epoch (the race: over the wave's folds,
    at step = wave x E + epoch, so its curve runs on through the waves); Wilcoxon sees each fold
    at step = epoch x K + fold, whose K values are averaged here. None when no trial reported
    (``--pruner none`` scores the last epoch only).
    """
    rows = []
    folds = defn.cv.folds * defn.cv.repeats  # R x K fold-models
    for t in trials:
        values = t.intermediate_values
        if not values:
            continue
        per_fold = defn.pruner.name == "wilcoxon"  # K steps per epoch
        by_epoch: dict[int, list[float]] = {}
        for step, value in values.items():
            by_epoch.setdefault(step // folds if per_fold else step, []).append(value)
        for epoch, scores in sorted(by_epoch.items()):
            if not per_fold or len(scores) == folds:
                rows.append(
                    {
                        "trial": t.number,
                        "state": STATE_WORDS[t.state],
                        "epoch": epoch + 1,
                        "value": sum(scores) / len(scores),
                    }
                )
    return pd.DataFrame(rows, columns=["trial", "state", "epoch", "value"]) if rows else None
