"""Create or resume a study; each trial samples the space and is scored by K-fold CV.

Pipeline of ``run_study``: load the data -> cut the folds -> open the storage -> create the
study or check that the stored definition and data are this run's -> start the other worker
processes of ``--jobs`` -> run trials until the study holds ``trials`` finished (complete or
pruned) trials, however many workers share it (see ``workers.py``). The search holds the
training split only: ``load_training`` hashes the test rows into the fingerprint and drops them.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.config import TWO_CLASS_ONLY, RunConfig, stored_definition
from hpsearch.data import Dataset, changed_columns, load_training
from hpsearch.errors import ConfigError, DefinitionMismatch
from hpsearch.search.factories import make_pruner, make_sampler
from hpsearch.search.objective import Objective, Observer
from hpsearch.search.workers import Ending, WorkerConfig, run_trials, torch_threads, worker_processes
from hpsearch.store import check_shared, close_storage, open_storage, redact, storage_lost, study_locked
from hpsearch.store.schema import (
    FINISHED,
    STUDY_DATA,
    STUDY_DEFINITION,
    STUDY_VERSIONS,
    TRIAL_DEVICE,
    library_versions,
)
from hpsearch.training import Split, describe_device, make_splits, resolve_device

_log = logging.getLogger("hpsearch")


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


@dataclass(frozen=True, eq=False)
class Rows:
    """Training rows given in memory instead of loaded from the definition's data set: a notebook's
    arrays (``hpsearch.MLPSearchCV``) or the training rows of an outer fold of nested CV."""

    train: Dataset
    data: dict[str, Any]  # the summary the study stores and checks (``data.in_memory_summary``)
    splits: list[Split]  # the folds every trial is scored on


def run_study(
    cfg: RunConfig, observer: Observer | None = None, workers: WorkerConfig | None = None, rows: Rows | None = None
) -> Outcome:
    """Run (or continue) the study ``cfg`` describes until it holds ``cfg.trials`` finished trials.

    The rows are the definition's data set's training split, or ``rows`` when given (the same
    study code either way: only where the rows come from differs).

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
    with torch_threads(wcfg.threads):
        return _run(cfg, wcfg, observer, rows or _load_rows(cfg))


def _load_rows(cfg: RunConfig) -> Rows:
    """The training split of the definition's data set, and its folds."""
    train, data = load_training(cfg.definition.data)
    _check_metric(cfg.definition.metric, train)  # before the folds: a metric is the clearer complaint
    return Rows(train, data, make_splits(train.y, cfg.definition.cv, train.classes, train.groups))


def _run(cfg: RunConfig, wcfg: WorkerConfig, observer: Observer | None, rows: Rows) -> Outcome:
    train, data, splits = rows.train, rows.data, rows.splits
    _check_metric(cfg.definition.metric, train)
    storage = open_storage(cfg.storage, heartbeat=wcfg.heartbeat, patience=wcfg.patience)
    try:
        study = open_study(cfg, data, storage)
        _check_device(study, describe_device(resolve_device(cfg.device)))
        before = len(finished_trials(study))
        ending: Ending = "done"
        if before < cfg.trials:
            ending = _optimize(cfg, wcfg, storage, study, Objective(cfg, train, splits, observer), rows)
        short = len(finished_trials(study)) < cfg.trials
    except BaseException as e:
        close_storage(storage)
        lost = storage_lost(cfg.storage, e)
        if lost is not None:
            raise lost from None
        raise
    return Outcome(study, before, cfg.trials, timed_out=short and ending == "timeout", storage=storage)


def _check_metric(metric: str, train: Dataset) -> None:
    """Refuse a metric the data do not have (ROC AUC of more than two classes), before any trial.

    Raises:
        ConfigError: the metric needs two classes and the data have more.
    """
    if metric in TWO_CLASS_ONLY and train.n_classes != 2:
        raise ConfigError(
            f"--metric {metric} needs two classes, but {train.name} has {train.n_classes}; "
            "use balanced_accuracy or f1 (macro averages over the classes)"
        )


def _optimize(
    cfg: RunConfig,
    wcfg: WorkerConfig,
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    objective: Objective,
    rows: Rows,
) -> Ending:
    """Start the other workers of ``--jobs``, run trials here, wait for the others."""
    obs = objective.observer
    if obs is not None:
        obs.started(study, cfg.trials, len(objective.splits), cfg.definition.train.epochs)

    def reseed(number: int) -> None:
        study.sampler = make_sampler(cfg.definition.sampler, cfg.definition.seed, number)

    with worker_processes(wcfg.jobs - 1, _worker, (cfg, replace(wcfg, jobs=1), rows)):
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
            patience=wcfg.patience,
        )


def _worker(cfg: RunConfig, wcfg: WorkerConfig, rows: Rows, ready: Callable[[], None]) -> None:
    """One more worker process of ``--jobs``: the same study and rows, no display."""
    ready()  # imported: the slow part of starting is over
    run_study(cfg, None, wcfg, rows).close()


def open_study(
    cfg: RunConfig, data: dict[str, Any], storage: optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """Create the study with this run's definition, or load it and check it is the same run.

    Under the study's lock, so two first workers with different definitions cannot both write
    theirs: the second finds the first's and is refused. A study created under other library
    versions is continued, with a warning that its figures may not be reproduced exactly.

    Raises:
        DefinitionMismatch: the stored definition or data fingerprint differ from this run's.
        StorageError: the storage cannot be opened.
    """
    storage = storage or open_storage(cfg.storage)
    defn = cfg.definition
    with study_locked(cfg.storage, cfg.study_name, storage, getattr(storage, "patience", 0.0)):
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=cfg.study_name,
                direction=defn.direction,
                pruner=make_pruner(defn.pruner, defn.train.epochs),
                load_if_exists=True,
            )
        except ValueError as e:  # e.g. an existing study with the other direction
            raise DefinitionMismatch(f"study {cfg.study_name!r}: {e}") from None
        stored = study.user_attrs.get(STUDY_DEFINITION)
        if stored is None:
            if study.trials:
                raise DefinitionMismatch(
                    f"study {cfg.study_name!r} in {redact(cfg.storage)} was not made by hpsearch; "
                    "pick another --study-name"
                )
            study.set_user_attr(STUDY_DEFINITION, defn.to_dict())
            study.set_user_attr(STUDY_DATA, data)
            study.set_user_attr(STUDY_VERSIONS, library_versions())
            _name_objective(study, defn.metric)
            return study
    _check_same(cfg, stored, study.user_attrs.get(STUDY_DATA, {}), data)
    _check_versions(cfg, study.user_attrs.get(STUDY_VERSIONS))
    return study


def _check_device(study: optuna.Study, device: str) -> None:
    """Warn when the study's trials ran on another kind of device than this worker's."""
    kind = device.split(" ")[0]
    others = Counter(
        str(t.user_attrs[TRIAL_DEVICE])
        for t in study.get_trials(deepcopy=False)
        if str(t.user_attrs.get(TRIAL_DEVICE, kind)).split(" ")[0] != kind
    )
    if others:
        where = ", ".join(f"{n} on {d}" for d, n in others.most_common())
        _log.warning(
            "study %r holds trials trained elsewhere (%s) and this worker trains on %s: the same parameters draw "
            "other dropout masks there and round otherwise, so its figures will not match theirs bit for bit",
            study.study_name,
            where,
            device,
        )


def _check_versions(cfg: RunConfig, stored: dict[str, str] | None) -> None:
    now = library_versions()
    differ = [f"{k} {stored[k]} -> {now[k]}" for k in now if stored is not None and stored.get(k) != now[k]]
    if differ:
        _log.warning(
            "study %r was created under other library versions (%s): its new trials may not reproduce "
            "the figures of its first ones exactly",
            cfg.study_name,
            ", ".join(differ),
        )


def _name_objective(study: optuna.Study, metric: str) -> None:
    """Label the objective ``cv_<metric>`` for optuna-dashboard and ``study.metric_names``."""
    with warnings.catch_warnings():  # experimental in Optuna since 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"cv_{metric}"])


def _check_same(cfg: RunConfig, stored: dict[str, Any], stored_data: dict[str, Any], data: dict[str, Any]) -> None:
    ours = _flatten(cfg.definition.to_dict())
    theirs = _flatten(stored_definition(stored).to_dict())  # fields added since take their defaults
    # where the data are is not what they are: the fingerprint below says that
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k) and k != "data.path")
    if differ:
        was = ", ".join(f"{k}={theirs.get(k)!r}" for k in differ[:4])
        now = ", ".join(f"{k}={ours.get(k)!r}" for k in differ[:4])
        raise DefinitionMismatch(
            f"study {cfg.study_name!r} in {redact(cfg.storage)} was created with {was}; this run asks for {now}: "
            "run it with the same options, or start a new study with --study-name"
        )
    changed = changed_columns(stored_data, data)
    if changed is not None:
        raise DefinitionMismatch(f"the table's columns differ from study {cfg.study_name!r}'s: {changed}")
    if stored_data.get("fingerprint") != data["fingerprint"]:
        n_train, n_test, stored_fp = (stored_data.get(k) for k in ("n_train", "n_test", "fingerprint"))
        was = f"{n_train} + {n_test} rows, fingerprint {str(stored_fp)[:12]}"
        raise DefinitionMismatch(
            f"study {cfg.study_name!r} was run on other data ({was}); these data have {data['n_train']} + "
            f"{data['n_test']} rows, fingerprint {data['fingerprint'][:12]}"
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
