"""The sampler and the pruner a study definition names, built with every setting written out.

Both are part of the stored definition, so every worker and every resume samples and prunes by
the same rule, whatever defaults the installed Optuna has (Optuna 5 changed TPE's).
"""

from __future__ import annotations

import warnings

import optuna

from hpsearch.config import PrunerConfig, SamplerConfig, derive
from hpsearch.search.pruning import WavePruner


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


def make_pruner(cfg: PrunerConfig, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner: median (and the race's epoch pruner) and Hyperband see the mean validation score
    over the folds training after each epoch; Wilcoxon sees each fold's final score as a paired
    instance, as its documentation asks (see objective.py). ``epochs``: the definition's."""
    if cfg.name in ("median", "race"):  # the race stops trials between waves itself (race.py)
        return WavePruner(
            epochs=epochs, startup_trials=cfg.startup_trials, warmup_epochs=cfg.warmup_epochs, percentile=cfg.percentile
        )
    if cfg.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource="auto", reduction_factor=cfg.reduction_factor
        )
    if cfg.name == "wilcoxon":
        with warnings.catch_warnings():  # chosen knowingly; the warning would break the one-line stderr
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=cfg.p_threshold, n_startup_steps=cfg.startup_steps)
    return optuna.pruners.NopPruner()
