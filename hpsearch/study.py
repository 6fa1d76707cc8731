"""Create or resume a study; each trial samples the space and is scored by K-fold CV.

Pipeline of ``run_study``: load the data -> cut the folds -> open the storage -> create the
study or check that the stored definition and data are this run's -> optimize until the study
holds ``trials`` complete trials. Each fold's figures are saved on the trial as soon as the
fold ends, so a pruned or interrupted trial keeps what it reached.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Protocol

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import Definition, RunConfig, TrainConfig
from hpsearch.cv import Split, cross_validate, make_splits, summarize
from hpsearch.data import Dataset, load
from hpsearch.errors import DefinitionMismatch, StorageError, TrainingDiverged
from hpsearch.model import count_macs, count_params
from hpsearch.space import suggest
from hpsearch.storage import (
    STUDY_DATA,
    STUDY_DEFINITION,
    TRIAL_FOLDS,
    TRIAL_MACS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_REASON,
    TRIAL_STD,
    open_storage,
    redact,
)
from hpsearch.train import resolve_device


class Observer(Protocol):
    """What the study tells its display; every method is optional in spirit (may do nothing)."""

    def started(self, study: optuna.Study, target: int, folds: int, epochs: int) -> None: ...
    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...
    def epoch_done(self, epoch: int, losses: list[float]) -> None: ...
    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """How a run of ``run_study`` ended."""

    study: optuna.Study
    complete_before: int  # complete trials the study held when the run began
    target: int
    timed_out: bool  # stopped by --timeout before reaching the target
    gave_up: bool  # ran out of its trial budget: most trials were pruned, diverged or failed


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def run_study(cfg: RunConfig, observer: Observer | None = None) -> Outcome:
    """Run (or continue) the study ``cfg`` describes until it holds ``cfg.trials`` complete trials.

    Raises:
        HpsearchError: bad data, folds, storage, or a definition that differs from the stored one.
        KeyboardInterrupt: on Ctrl-C, after Optuna has marked the running trial failed.
    """
    defn = cfg.definition
    data = load(defn.data)
    splits = make_splits(data.y_train, defn.cv, data.classes)
    study = open_study(cfg, data)
    before = len(complete_trials(study))
    if before >= cfg.trials:
        return Outcome(study, before, cfg.trials, timed_out=False, gave_up=False)
    study.sampler = _sampler(defn, already=len(study.trials))
    base = replace(defn.train, device=resolve_device(cfg.device))
    objective = _Objective(cfg, data, splits, base, observer)
    if observer is not None:
        observer.started(study, cfg.trials, defn.cv.folds, defn.train.epochs)
    callbacks: list[Any] = [optuna.study.MaxTrialsCallback(cfg.trials, states=(TrialState.COMPLETE,))]
    if observer is not None:
        callbacks.append(observer.trial_done)
    # MaxTrialsCallback stops the run at the target, however many workers share the study;
    # the budget stops a run whose space makes nearly every trial diverge from looping forever.
    remaining = cfg.trials - before
    budget = max(3 * remaining, remaining + 20)
    try:
        study.optimize(objective, n_trials=budget, timeout=cfg.timeout, callbacks=callbacks, catch=())
    except sqlalchemy.exc.SQLAlchemyError as e:
        first = str(e).strip().splitlines()[0]
        raise StorageError(f"the storage {redact(cfg.storage)} stopped answering: {first}") from None
    short = len(complete_trials(study)) < cfg.trials
    timed_out = short and cfg.timeout is not None
    return Outcome(study, before, cfg.trials, timed_out=timed_out, gave_up=short and not timed_out)


def open_study(cfg: RunConfig, data: Dataset) -> optuna.Study:
    """Create the study with this run's definition, or load it and check it is the same run.

    Raises:
        DefinitionMismatch: the stored definition or data fingerprint differ from this run's.
        StorageError: the storage cannot be opened.
    """
    storage = open_storage(cfg.storage)
    defn = cfg.definition
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=cfg.study_name,
            direction=defn.direction,
            pruner=_pruner(cfg),
            load_if_exists=True,
        )
    except ValueError as e:  # e.g. an existing study with the other direction
        raise DefinitionMismatch(f"study {cfg.study_name!r}: {e}") from None
    stored = study.user_attrs.get(STUDY_DEFINITION)
    if stored is None:
        if study.trials:
            raise DefinitionMismatch(
                f"study {cfg.study_name!r} in {redact(cfg.storage)} was not made by hpsearch; pick another --study-name"
            )
        study.set_user_attr(STUDY_DEFINITION, defn.to_dict())
        study.set_user_attr(STUDY_DATA, data.summary())
        return study
    _check_same(cfg, stored, study.user_attrs.get(STUDY_DATA, {}), data)
    return study


def _check_same(cfg: RunConfig, stored: dict[str, Any], stored_data: dict[str, Any], data: Dataset) -> None:
    ours = _flatten(cfg.definition.to_dict())
    theirs = _flatten(stored)
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differ:
        was = ", ".join(f"{k}={theirs.get(k)!r}" for k in differ[:4])
        now = ", ".join(f"{k}={ours.get(k)!r}" for k in differ[:4])
        raise DefinitionMismatch(
            f"study {cfg.study_name!r} in {redact(cfg.storage)} was created with {was}; this run asks for {now}: "
            "run it with the same options, or start a new study with --study-name"
        )
    if stored_data.get("fingerprint") != data.fingerprint():
        n_train, n_test, stored_fp = (stored_data.get(k) for k in ("n_train", "n_test", "fingerprint"))
        was = f"{n_train} + {n_test} rows, fingerprint {str(stored_fp)[:12]}"
        raise DefinitionMismatch(
            f"study {cfg.study_name!r} was run on other data ({was}); these data have {len(data.y_train)} + "
            f"{len(data.y_test)} rows, fingerprint {data.fingerprint()[:12]}"
        )


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif key == "space":
            out[f"{prefix}space"] = value
        else:
            out[f"{prefix}{key}"] = value
    return out


def _sampler(defn: Definition, already: int) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already run: a resumed study must not replay the random
    # start-up samples of its first run, while a fresh study stays reproducible.
    seed = defn.seed + already
    if defn.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    # Median and Hyperband see the mean validation score over all K folds after each epoch;
    # Wilcoxon sees each fold's score after each epoch as a paired instance (see _Objective).
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    if cfg.pruner == "wilcoxon":
        with warnings.catch_warnings():  # chosen knowingly; the warning would break the one-line stderr
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    return optuna.pruners.NopPruner()


class _Objective:
    """One trial: sample a TrainConfig, cross-validate it, save every fold's figures."""

    def __init__(
        self, cfg: RunConfig, data: Dataset, splits: list[Split], base: TrainConfig, observer: Observer | None
    ) -> None:
        self.defn, self.data, self.splits, self.base, self.observer = cfg.definition, data, splits, base, observer
        self.pruner = cfg.pruner

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except KeyboardInterrupt:  # Optuna marks the trial failed; say why
            trial.set_user_attr(TRIAL_REASON, "interrupted (Ctrl-C)")
            raise

    def _run(self, trial: optuna.Trial) -> float:
        train = suggest(trial, self.defn.space, self.base)
        sizes = (self.data.n_features, self.data.n_classes, train.depth, train.width)
        trial.set_user_attr(TRIAL_PARAMS_COUNT, count_params(*sizes))
        trial.set_user_attr(TRIAL_MACS, count_macs(*sizes))
        if self.observer is not None:
            self.observer.trial_started(trial.number, trial.params)
        metric, folds = self.defn.metric, len(self.splits)

        def on_epoch(epoch: int, losses: list[float], figures: list[dict[str, float]] | None) -> None:
            if self.observer is not None:
                self.observer.epoch_done(epoch, losses)
            if figures is None:
                return
            _save_folds(trial, figures)  # a pruned trial keeps the figures it reached
            scores = [f[metric] for f in figures]
            if not all(math.isfinite(v) for v in scores):
                raise TrainingDiverged(f"validation {metric} is not finite after epoch {epoch + 1}")
            if self.pruner == "wilcoxon":  # paired instances: fold k after epoch e is step e*K + k
                for k, value in enumerate(scores):
                    trial.report(value, step=epoch * folds + k)
            else:  # the mean over all K folds after epoch e: step e means the same in every trial
                trial.report(sum(scores) / folds, step=epoch)
            if epoch < train.epochs - 1 and trial.should_prune():
                reason = f"pruned after epoch {epoch + 1}/{train.epochs}: mean {metric} {sum(scores) / folds:.4f}"
                trial.set_user_attr(TRIAL_REASON, reason)
                raise optuna.TrialPruned(reason)

        try:
            result = cross_validate(
                self.data, self.splits, train, on_epoch=on_epoch, score_every_epoch=self.pruner != "none"
            )
        except TrainingDiverged as e:
            trial.set_user_attr(TRIAL_REASON, f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        _save_folds(trial, result.folds)
        if not math.isfinite(result.mean[metric]):
            trial.set_user_attr(TRIAL_REASON, f"diverged: validation {metric} is {result.mean[metric]}")
            raise optuna.TrialPruned(f"diverged: validation {metric} is {result.mean[metric]}")
        return result.mean[metric]


def _save_folds(trial: optuna.Trial, folds: list[dict[str, float]]) -> None:
    mean, std = summarize(folds)
    trial.set_user_attr(TRIAL_FOLDS, folds)
    trial.set_user_attr(TRIAL_MEAN, mean)
    trial.set_user_attr(TRIAL_STD, std)
