"""The sampler and the pruner a study definition names, built with every setting written out."""

from __future__ import annotations

import warnings

import optuna

from hpsearch.config import Definition, Pruner


def make_sampler(defn: Definition, number: int) -> optuna.samplers.BaseSampler:
    # A sampler per trial, seeded with the trial's number: a fresh study stays reproducible, a
    # resumed one does not replay its first run's samples, and workers that start trials at the
    # same moment do not sample the same parameters.
    seed = defn.seed + number
    if defn.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(pruner: Pruner) -> optuna.pruners.BasePruner:
    # Median and Hyperband see the mean validation score over all K folds after each epoch;
    # Wilcoxon sees each fold's score after each epoch as a paired instance (see _Objective).
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    if pruner == "wilcoxon":
        with warnings.catch_warnings():  # chosen knowingly; the warning would break the one-line stderr
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    return optuna.pruners.NopPruner()
