"""The race over folds: a trial trains its K folds in waves and stops after a wave once it cannot win.

Bergman, Purucker and Hutter ("Don't Waste Your Time: Early Stopping Cross-Validation", AutoML
2024) stop a configuration's remaining folds once the mean of its evaluated folds is worse than
the incumbent's worst fold: the *forgiving* rule, which hpsearch applies after each wave but the
last, the incumbent being the study's best complete trial. The *paired* rule compares the mean
of the evaluated folds with the incumbent's mean on the same folds instead, and cuts more. Within
a wave the epoch pruner (a median pruner) keeps working: wave w's epoch e is step w*E + e in every
trial, on the same folds, so a step means the same thing everywhere. A trial that completes has
all K folds; a trial stopped by the race ends pruned with the folds it reached and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpsearch.config import PrunerConfig


def folds_words(trained: Sequence[int]) -> str:
    """``folds 1-2`` or ``fold 1`` (numbered from 1, as people count them)."""
    first, last = trained[0] + 1, trained[-1] + 1
    return f"fold {first}" if first == last else f"folds {first}-{last}"


def verdict(
    cfg: PrunerConfig,
    metric: str,
    scores: Sequence[float],
    trained: Sequence[int],
    incumbent: Sequence[float],
    *,
    maximize: bool,
) -> str | None:
    """Why the trial cannot win after the folds ``trained`` (its ``scores`` on them), or None to go on.

    Args:
        cfg: the study's pruner settings (``race_rule``).
        metric: the study's metric, for the reason in words.
        scores: the trial's metric on each fold trained, in fold order.
        trained: those folds' indices.
        incumbent: the best complete trial's metric on each of the K folds.
        maximize: True when higher is better.
    """
    if not incumbent or not scores:
        return None
    mean, sign = sum(scores) / len(scores), 1.0 if maximize else -1.0
    below = "below" if maximize else "above"
    if cfg.race_rule == "paired":
        bar = sum(incumbent[k] for k in trained) / len(trained)
        against = f"the best trial's mean on the same folds, {bar:.4f}"
    else:
        bar = min(incumbent) if maximize else max(incumbent)
        against = f"the best trial's worst fold, {bar:.4f}"
    if sign * mean < sign * bar:
        return f"stopped after {folds_words(trained)}: mean {metric} {mean:.4f} {below} {against}"
    return None
