"""The epoch pruner: a trial's learning curve against the complete trials' curves, within one wave.

A trial reports its mean validation score over the folds of the wave it is training after each
epoch, at step ``w * E + e`` (wave w, epoch e of E; without the race there is one wave). The
pruner compares it only where curves are comparable: the same epoch of the same folds. After
the first ``warmup_epochs`` epochs of every wave, a trial stops when its best score so far in
this wave is below the ``percentile``-th percentile of the complete trials' scores at this step
(for a loss: above it). With one wave and percentile 50 that is Optuna's ``MedianPruner``
(``n_warmup_steps = warmup_epochs``); what Optuna's pruners do not do is restart the warm-up on
fresh fold-models, and keep a trial's score on folds 1-2 out of the judgement of folds 3-4 (they
take the best over all steps so far).

Only complete trials are references, as in Optuna's percentile pruners: they have reached every
step. ``startup_trials`` of them must exist before the pruner prunes.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


class WavePruner(BasePruner):
    """Prune within a wave, from ``warmup_epochs`` on, below the complete trials' ``percentile`` at the same step.

    Args:
        epochs: the epochs of a wave (the definition's ``train.epochs``), unless the trial searches them.
        startup_trials: complete trials needed before any trial is pruned.
        warmup_epochs: epochs of every wave that a trial always runs.
        percentile: 50 prunes below the median; 25 only in the bottom quarter.
    """

    def __init__(self, *, epochs: int, startup_trials: int, warmup_epochs: int, percentile: float = 50.0) -> None:
        self.epochs, self.startup, self.warmup, self.percentile = epochs, startup_trials, warmup_epochs, percentile

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        epochs = int(trial.params.get("epochs", self.epochs))
        wave, epoch = divmod(step, epochs)
        if epoch < self.warmup:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        at_step = [t.intermediate_values[step] for t in complete if step in t.intermediate_values]
        if len(complete) < self.startup or not at_step:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        this_wave = [v for s, v in trial.intermediate_values.items() if wave * epochs <= s <= step]
        if not all(math.isfinite(v) for v in this_wave):
            return True
        best = max(this_wave) if maximize else min(this_wave)
        # the bottom `percentile` per cent: for a loss, the top (Optuna's PercentilePruner counts the other way:
        # its percentile is the share kept)
        bar = float(np.percentile(at_step, self.percentile if maximize else 100 - self.percentile))
        return best < bar if maximize else best > bar
