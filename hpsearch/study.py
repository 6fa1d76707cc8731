"""Create or resume a study; each trial samples the space and is scored by K-fold CV.

Pipeline of ``run_study``: load the data -> cut the folds -> open the storage -> create the
study or check that the stored definition and data are this run's -> start the other worker
processes of ``--jobs`` -> run trials until the study holds ``trials`` finished (complete or
pruned) trials, however many workers share it (see ``workers.py``). Each fold's figures are saved on the trial as soon
as the fold ends, so a pruned or interrupted trial keeps what it reached.
"""

from __future__ import annotations

import math
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import Definition, RunConfig, stored_definition
from hpsearch.cv import Split, cross_validate, make_splits, summarize
from hpsearch.data import Dataset, load
from hpsearch.errors import DefinitionMismatch, TrainingDiverged
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
    TRIAL_WORKER,
    check_shared,
    close_storage,
    open_storage,
    redact,
    storage_lost,
)
from hpsearch.train import resolve_device
from hpsearch.workers import FINISHED, Ending, WorkerConfig, run_trials, set_threads, stop_point, worker_processes


class Observer(Protocol):
    """What the study tells its display; every method is optional in spirit (may do nothing)."""

    def started(self, study: optuna.Study, target: int, folds: int, epochs: int) -> None: ...
    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...
    def epoch_done(self, epoch: int, losses: list[float]) -> None: ...
    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """How a run of ``run_study`` ended; ``close()`` it once read."""

    study: optuna.Study
    finished_before: int  # finished (complete or pruned) trials the study held when the run began
    target: int
    timed_out: bool  # stopped by --timeout before reaching the target
    storage: optuna.storages.BaseStorage

    def close(self) -> None:
        close_storage(self.storage)


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that ``--trials`` counts: complete or pruned (a diverged trial is pruned)."""
    return study.get_trials(deepcopy=False, states=FINISHED)


def run_study(cfg: RunConfig, observer: Observer | None = None, workers: WorkerConfig | None = None) -> Outcome:
    """Run (or continue) the study ``cfg`` describes until it holds ``cfg.trials`` finished trials.

    Finished: complete or pruned, as Optuna's ``n_trials`` counts them. (Counting complete trials
    alone made the median pruner a trap: it compares a trial with the complete ones, which it let
    through because they beat the median, so the bar rose and it stopped 81% of the default
    study's trials by the 156th, with 29 complete.)

    Other workers (``workers.jobs - 1`` processes started here, or processes anywhere else) may
    work on the same study at the same time; together they stop at exactly ``cfg.trials``.

    Raises:
        HpsearchError: bad data, folds, storage, or a definition that differs from the stored one.
        KeyboardInterrupt: on Ctrl-C, after Optuna has marked the running trial failed.
    """
    wcfg = workers or WorkerConfig()
    check_shared(cfg.storage, wcfg.jobs)
    set_threads(wcfg.threads)
    data = load(cfg.definition.data)
    splits = make_splits(data.y_train, cfg.definition.cv, data.classes)
    storage = open_storage(cfg.storage, heartbeat=wcfg.heartbeat)
    try:
        study = open_study(cfg, data, storage)
        before = len(finished_trials(study))
        ending: Ending = "done"
        if before < cfg.trials:
            ending = _optimize(cfg, wcfg, storage, study, _Objective(cfg, data, splits, observer))
        short = len(finished_trials(study)) < cfg.trials
    except BaseException as e:
        close_storage(storage)
        lost = storage_lost(cfg.storage, e)
        if lost is not None:
            raise lost from None
        raise
    return Outcome(study, before, cfg.trials, timed_out=short and ending == "timeout", storage=storage)


def _optimize(
    cfg: RunConfig,
    wcfg: WorkerConfig,
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    objective: _Objective,
) -> Ending:
    """Start the other workers of ``--jobs``, run trials here, wait for the others."""
    obs = objective.observer
    if obs is not None:
        obs.started(study, cfg.trials, cfg.definition.cv.folds, cfg.definition.train.epochs)

    def reseed(number: int) -> None:
        study.sampler = _sampler(cfg.definition, number)

    with worker_processes(wcfg.jobs - 1, _worker, (cfg, replace(wcfg, jobs=1))):
        return run_trials(
            study,
            objective,
            storage=storage,
            url=cfg.storage,
            target=cfg.trials,
            timeout=cfg.timeout,
            poll=wcfg.poll,
            before_trial=reseed,
            callbacks=[obs.trial_done] if obs is not None else [],
        )


def _worker(cfg: RunConfig, wcfg: WorkerConfig, ready: Callable[[], None]) -> None:
    """One more worker process of ``--jobs``: the same study, no display."""
    ready()  # imported: the slow part of starting is over
    run_study(cfg, None, wcfg).close()


def open_study(cfg: RunConfig, data: Dataset, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """Create the study with this run's definition, or load it and check it is the same run.

    Raises:
        DefinitionMismatch: the stored definition or data fingerprint differ from this run's.
        StorageError: the storage cannot be opened.
    """
    storage = storage or open_storage(cfg.storage)
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
    theirs = _flatten(stored_definition(stored).to_dict())  # fields added since take their defaults
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


def _sampler(defn: Definition, number: int) -> optuna.samplers.BaseSampler:
    # A sampler per trial, seeded with the trial's number: a fresh study stays reproducible, a
    # resumed one does not replay its first run's samples, and workers that start trials at the
    # same moment do not sample the same parameters.
    seed = defn.seed + number
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

    def __init__(self, cfg: RunConfig, data: Dataset, splits: list[Split], observer: Observer | None) -> None:
        self.defn, self.data, self.splits, self.observer = cfg.definition, data, splits, observer
        self.base = replace(cfg.definition.train, device=resolve_device(cfg.device))
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
        trial.set_user_attr(TRIAL_WORKER, f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr(TRIAL_PARAMS_COUNT, count_params(*sizes))
        trial.set_user_attr(TRIAL_MACS, count_macs(*sizes))
        if self.observer is not None:
            self.observer.trial_started(trial.number, trial.params)
        metric, folds = self.defn.metric, len(self.splits)

        def on_epoch(epoch: int, losses: list[float], figures: list[dict[str, float]] | None) -> None:
            stop_point()  # Ctrl-C ends the trial here, between two epochs
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
            _save_folds(trial, result.folds)
            stop_point()  # Ctrl-C after the last epoch still ends the trial failed, as asked
        except TrainingDiverged as e:
            trial.set_user_attr(TRIAL_REASON, f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        if not math.isfinite(result.mean[metric]):
            trial.set_user_attr(TRIAL_REASON, f"diverged: validation {metric} is {result.mean[metric]}")
            raise optuna.TrialPruned(f"diverged: validation {metric} is {result.mean[metric]}")
        return result.mean[metric]


def _save_folds(trial: optuna.Trial, folds: list[dict[str, float]]) -> None:
    mean, std = summarize(folds)
    trial.set_user_attr(TRIAL_FOLDS, folds)
    trial.set_user_attr(TRIAL_MEAN, mean)
    trial.set_user_attr(TRIAL_STD, std)
