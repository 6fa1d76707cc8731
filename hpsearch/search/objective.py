"""One trial: sample a TrainConfig, cross-validate it on the training split, save every fold's figures.

Each fold's figures are saved on the trial after every scored epoch (after every wave, for
Wilcoxon), so a pruned or interrupted trial keeps what it reached. The epoch pruners see the
mean over the folds training after each epoch (step = epoch; the race: step = wave x E + epoch);
Wilcoxon sees each fold's score after its last epoch as a paired instance (step = fold), as
Optuna's WilcoxonPruner documents it, and may stop a trial after each wave of folds.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, Protocol

import optuna
from optuna.trial import FrozenTrial

from hpsearch.config import RunConfig, TrainConfig
from hpsearch.data import Dataset
from hpsearch.data.inputs import input_spec
from hpsearch.errors import TrainingDiverged
from hpsearch.search.race import folds_words, verdict
from hpsearch.search.space import suggest
from hpsearch.search.workers import past_deadline, stop_point
from hpsearch.store.models import keep_fold_models, models_folder
from hpsearch.store.schema import (
    STUDY_DATA,
    TRIAL_DEVICE,
    TRIAL_FOLDS,
    TRIAL_MACS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_REASON,
    TRIAL_STD,
    TRIAL_WORKER,
    library_versions,
)
from hpsearch.training import (
    Split,
    count_macs,
    count_params,
    cross_validate,
    describe_device,
    plan_waves,
    resolve_device,
    summarize,
)
from hpsearch.training.bundle import Header
from hpsearch.training.cv import Member
from hpsearch.training.ensemble import fold_parts, save_ensemble


class Observer(Protocol):
    """What the study tells its display; every method is optional in spirit (may do nothing)."""

    def started(self, study: optuna.Study, target: int, folds: int, epochs: int) -> None: ...
    def trial_started(self, number: int, params: dict[str, Any]) -> None: ...
    def epoch_done(self, epoch: int, losses: list[float], folds: list[int]) -> None: ...  # folds: 0-based
    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


class Objective:
    """One trial: sample a TrainConfig, cross-validate it, save every fold's figures."""

    def __init__(self, cfg: RunConfig, train_split: Dataset, splits: list[Split], observer: Observer | None) -> None:
        self.defn, self.train_split, self.splits, self.observer = cfg.definition, train_split, splits, observer
        self.base = replace(cfg.definition.train, device=resolve_device(cfg.device))
        self.device = describe_device(self.base.device)
        self.pruner = cfg.definition.pruner.name
        ensemble = cfg.definition.final.model == "fold-ensemble"  # the fold-models of the best are kept
        self.models = models_folder(cfg.storage, cfg.study_name, cfg.models) if ensemble else None

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except KeyboardInterrupt:  # Optuna marks the trial failed; say why
            trial.set_user_attr(TRIAL_REASON, "interrupted (Ctrl-C)")
            raise

    def _run(self, trial: optuna.Trial) -> float:
        train = suggest(trial, self.defn.space, self.base)
        sizes = (self.train_split.n_features, self.train_split.n_classes, train.depth, train.width)
        trial.set_user_attr(TRIAL_WORKER, f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr(TRIAL_DEVICE, self.device)
        trial.set_user_attr(TRIAL_PARAMS_COUNT, count_params(*sizes))
        trial.set_user_attr(TRIAL_MACS, count_macs(*sizes))
        if self.observer is not None:
            self.observer.trial_started(trial.number, trial.params)
        metric, folds, epochs = self.defn.metric, len(self.splits), train.epochs
        waved = self.pruner in ("race", "wilcoxon")  # both may stop a trial between waves of folds
        waves = plan_waves(folds, self.defn.pruner.wave_folds) if waved else [list(range(folds))]
        done: dict[int, dict[str, float]] = {}  # the figures of the folds of finished waves
        reported: set[int] = set()  # Wilcoxon: the folds reported as instances

        def on_epoch(step: int, losses: list[float], figures: list[dict[str, float]] | None) -> None:
            stop_point()  # Ctrl-C ends the trial here, between two epochs
            wave, epoch = divmod(step, epochs)
            if self.observer is not None:
                self.observer.epoch_done(epoch, losses, waves[wave])
            if figures is not None:
                judge(wave, epoch, step, figures)
            if past_deadline() and step < len(waves) * epochs - 1:  # --timeout: the budget is the study's
                prune(f"stopped by --timeout after {at(wave, epoch)}")

        def at(wave: int, epoch: int) -> str:
            return (f"wave {wave + 1}/{len(waves)}, " if waved else "") + f"epoch {epoch + 1}/{epochs}"

        def prune(reason: str) -> NoReturn:
            trial.set_user_attr(TRIAL_REASON, reason)
            raise optuna.TrialPruned(reason)

        def judge(wave: int, epoch: int, step: int, figures: list[dict[str, float]]) -> None:
            now = done | dict(zip(waves[wave], figures, strict=True))
            _save_folds(trial, [now[k] for k in sorted(now)])  # a pruned trial keeps the figures it reached
            scores = [f[metric] for f in figures]
            if not all(math.isfinite(v) for v in scores):
                raise TrainingDiverged(f"validation {metric} is not finite after epoch {epoch + 1}")
            trial.report(sum(scores) / len(scores), step=step)  # a step means the same in every trial
            if epoch < epochs - 1 and trial.should_prune():
                prune(f"pruned after {at(wave, epoch)}: mean {metric} {sum(scores) / len(scores):.4f}")

        def on_wave(wave: int, trained: list[int], figures: list[dict[str, float]]) -> None:
            done.update(zip(trained, figures, strict=True))
            if self.pruner == "wilcoxon":
                _save_folds(trial, figures)  # a pruned trial keeps the folds it trained
                if _report_folds(trial, metric, done, reported) and trial.should_prune():
                    prune(f"stopped after {folds_words(trained)}: worse than the best trial on the same folds "
                          f"(Wilcoxon signed-rank test, p < {self.defn.pruner.p_threshold:g})")  # fmt: skip
                return
            best = _incumbent(trial.study)
            reason = verdict(
                self.defn.pruner,
                metric,
                [f[metric] for f in figures],
                trained,
                [] if best is None else [f[metric] for f in best.user_attrs.get(TRIAL_FOLDS, [])],
                maximize=self.defn.direction == "maximize",
            )
            if reason is not None:
                prune(reason)

        try:
            result = cross_validate(
                self.train_split,
                self.splits,
                train,
                on_epoch=on_epoch,
                score_every_epoch=self.pruner in ("median", "race", "hyperband"),
                waves=waves,
                on_wave=on_wave if waved else None,
                keep_models=self.models is not None,
            )
            _save_folds(trial, result.folds)
            if self.pruner == "wilcoxon":  # the best trial's instances are what later trials are paired with
                _report_folds(trial, metric, dict(enumerate(result.folds)), reported)
            stop_point()  # Ctrl-C after the last epoch still ends the trial failed, as asked
        except TrainingDiverged as e:
            trial.set_user_attr(TRIAL_REASON, f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        if not math.isfinite(result.mean[metric]):
            trial.set_user_attr(TRIAL_REASON, f"diverged: validation {metric} is {result.mean[metric]}")
            raise optuna.TrialPruned(f"diverged: validation {metric} is {result.mean[metric]}")
        if self.models is not None and result.members is not None:
            self._keep(trial, train, result.members, result.mean[metric])
        return result.mean[metric]

    def _keep(self, trial: optuna.Trial, train: TrainConfig, members: list[Member], value: float) -> None:
        """A fold-ensemble study: store the trial's fold-models if it is among the best (store/models.py)."""
        assert self.models is not None
        data = self.train_split

        def write(path: Path) -> None:  # only for a trial among the best: most complete trials write nothing
            spec = input_spec(self.defn.data, data)
            header = Header.of(
                data,
                train,
                spec,
                fingerprint=str(trial.study.user_attrs.get(STUDY_DATA, {}).get("fingerprint", "")),
                study=trial.study.study_name,
                trial=trial.number,
                params=dict(trial.params),
                versions=library_versions(),
            )
            save_ensemble(path, fold_parts(members, data, spec.pixel_max), header)

        maximize = self.defn.direction == "maximize"
        keep_fold_models(trial, value, self.models, self.defn.final.keep, maximize=maximize, write=write)


def _incumbent(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, with a figure for every fold, or None before the first."""
    try:
        return study.best_trial
    except ValueError:
        return None


def _report_folds(trial: optuna.Trial, metric: str, figures: dict[int, dict[str, float]], reported: set[int]) -> bool:
    """Report each fold not yet ``reported`` as Wilcoxon's instance ``k``: its score after its last epoch,
    so that their mean is the objective, as WilcoxonPruner asks. False when a score is not finite."""
    for k, f in sorted(figures.items()):
        if k not in reported and math.isfinite(f[metric]):
            trial.report(f[metric], step=k)
            reported.add(k)
    return all(math.isfinite(f[metric]) for f in figures.values())


def _save_folds(trial: optuna.Trial, folds: list[dict[str, float]]) -> None:
    mean, std = summarize(folds)
    trial.set_user_attr(TRIAL_FOLDS, folds)
    trial.set_user_attr(TRIAL_MEAN, mean)
    trial.set_user_attr(TRIAL_STD, std)
