"""The sampler and the pruner a study definition names, built with every setting written out.

Both are part of the stored definition, so every worker and every resume samples and prunes by
the same rule, whatever defaults the installed Optuna has (Optuna 5 changed TPE's).
"""

from __future__ import annotations

import warnings

import optuna

from hpsearch.config import PrunerConfig, SamplerConfig, derive


def make_sampler(cfg: SamplerConfig, seed: int, number: int) -> optuna.samplers.BaseSampler:
    """The sampler for trial ``number``, seeded from the study seed's sampler stream.

    A sampler per trial: a fresh study stays reproducible, a resumed one does not replay its
    first run's samples, and workers that start trials at the same moment do not sample the
    same parameters.
    """
    trial_seed = derive(seed, "sampler", number)
    if cfg.name == "random":
        return optuna.samplers.RandomSampler(seed=trial_seed)
    with warnings.catch_warnings():  # multivariate TPE is "experimental" in Optuna 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=trial_seed,
            n_startup_trials=cfg.startup_trials,
            n_ei_candidates=cfg.ei_candidates,
            multivariate=cfg.multivariate,
            constant_liar=cfg.constant_liar,
        )


def make_pruner(cfg: PrunerConfig) -> optuna.pruners.BasePruner:
    """The pruner: median and Hyperband see the mean validation score over all K folds after each
    epoch; Wilcoxon sees each fold's score after each epoch as a paired instance (see objective.py)."""
    if cfg.name in ("median", "race"):  # the race stops trials between waves itself (race.py)
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs)
    if cfg.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource="auto", reduction_factor=cfg.reduction_factor
        )
    if cfg.name == "wilcoxon":
        with warnings.catch_warnings():  # chosen knowingly; the warning would break the one-line stderr
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=cfg.p_threshold, n_startup_steps=cfg.startup_steps)
    return optuna.pruners.NopPruner()
