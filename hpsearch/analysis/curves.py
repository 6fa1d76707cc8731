"""Learning curves: each trial's mean validation score after each epoch, from what its objective reported."""

from __future__ import annotations

import pandas as pd
from optuna.trial import FrozenTrial

from hpsearch.config import Definition
from hpsearch.store.schema import STATE_WORDS


def learning_curves(trials: list[FrozenTrial], defn: Definition) -> pd.DataFrame | None:
    """Each trial's mean validation score after each epoch, as its objective reported it.

    The epoch pruners see the mean over the K folds at step = epoch (the race: over the wave's
    folds, at step = wave x E + epoch, so its curve runs on through the waves). None when no
    trial reported epochs: ``--pruner none`` scores the last epoch only, and Wilcoxon's steps are
    folds, not epochs.
    """
    if defn.pruner.name == "wilcoxon":
        return None
    rows = [
        {"trial": t.number, "state": STATE_WORDS[t.state], "epoch": step + 1, "value": value}
        for t in trials
        for step, value in sorted(t.intermediate_values.items())
    ]
    return pd.DataFrame(rows, columns=["trial", "state", "epoch", "value"]) if rows else None
