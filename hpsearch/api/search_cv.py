"""``hpsearch.MLPSearchCV``: a study as a scikit-learn estimator, on rows held in memory.

``fit(X, y)`` builds a study definition of its arguments (data set ``arrays``), the rows as a table
(``api.inputs``) and their folds, and runs ``api.run_study``: the study code ``hpsearch study`` runs,
trial for trial (sampler, pruner and race, fold figures, storage), the rows given rather than loaded.
Then it reads the study back as scikit-learn's search estimators expose one (``cv_results_``,
``best_params_``, ...) and refits the best trial's settings on all rows as an ``MLPClassifier``: the
code ``final-test`` retrains with.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted

from hpsearch.analysis.cv_results import cv_results
from hpsearch.analysis.final_test import choose_trial
from hpsearch.api.estimators import MLPClassifier, check_device, seed_of
from hpsearch.api.inputs import class_names, training_rows
from hpsearch.api.study import run_study
from hpsearch.config import IN_MEMORY, CVConfig, Definition, RunConfig, definition_from_dict
from hpsearch.data import Dataset
from hpsearch.data.arrays import from_frame, in_memory_summary
from hpsearch.errors import ConfigError, HpsearchError
from hpsearch.search import Rows, WorkerConfig, available_cores
from hpsearch.store import close_storage, open_storage
from hpsearch.store import storage_url as _url
from hpsearch.training import Split, make_splits


class MLPSearchCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]  # untyped bases
    """Search MLP hyperparameters by K-fold CV on ``X``, ``y``: an hpsearch study, in scikit-learn's terms.

    Args:
        space: the search space, shaped as a definition's ``[space]`` table (``{"lr": {"low": 1e-4,
            "high": 0.1, "log": True}, "depth": {"choices": [1, 2]}}``); None: the default space.
        params: fixed training settings, as a definition's ``[train]`` table (``{"epochs": 5}``).
        n_trials: finished (complete or pruned) trials the study should hold when ``fit`` returns.
        timeout: the search's time budget in seconds; None: none.
        cv: K (hpsearch's seeded stratified folds, grouped by ``groups`` when given), a scikit-learn
            splitter, or an iterable of (training rows, validation rows).
        scoring: the study metric: ``accuracy``, ``precision``, ``recall``, ``f1``, ``balanced_accuracy``,
            ``roc_auc`` (two classes) or ``loss`` (minimised; ``mean_test_score`` is then the loss).
        pruner, sampler: a name (``median``, ``race``, ``wilcoxon``, ``hyperband``, ``none``; ``tpe``,
            ``random``) or a definition's ``[pruner]`` / ``[sampler]`` table.
        refit: retrain the best trial's settings on all rows as ``best_estimator_``.
        random_state: the study seed (folds, sampler, weights); None: drawn from numpy's global generator.
        n_jobs: worker processes (-1: one per core).
        storage: None (a study in memory, ``study_`` only) or an SQLite path or storage URL: a stored study
            that ``hpsearch report`` and optuna-dashboard open, and that ``fit`` on the same rows continues (so
            inside ``cross_val_score``, whose folds are other rows, leave it None, or run ``hpsearch nested``).
        study_name: the study's name in ``storage``; None: ``arrays``.
        device: ``auto``, ``cpu`` or ``cuda``.

    Attributes:
        cv_results_: every trial, in scikit-learn's keys and hpsearch's (``analysis.cv_results``).
        best_index_, best_params_, best_score_: the best complete trial (its index in ``cv_results_``).
        simplest_index_: the one-standard-error choice, as ``final-test simplest`` makes it; None when none.
        best_estimator_: an ``MLPClassifier`` of the best trial's settings, trained on all rows (``refit``).
        study_: the Optuna study; n_splits_: the folds; classes_, n_features_in_, feature_names_in_.
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        n_trials: int = 20,
        timeout: float | None = None,
        cv: Any = 5,
        scoring: str = "accuracy",
        pruner: str | dict[str, Any] = "median",
        sampler: str | dict[str, Any] = "tpe",
        refit: bool = True,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
        storage: str | Path | None = None,
        study_name: str | None = None,
        device: str = "auto",
    ) -> None:
        self.space = space
        self.params = params
        self.n_trials = n_trials
        self.timeout = timeout
        self.cv = cv
        self.scoring = scoring
        self.pruner = pruner
        self.sampler = sampler
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.storage = storage
        self.study_name = study_name
        self.device = device

    def fit(self, X: Any, y: Any, groups: Any = None) -> MLPSearchCV:
        """Run (or continue) the study on ``X``, ``y``; ``groups``: each row's group, kept in one fold.

        Raises:
            ValueError: rows or labels scikit-learn refuses, a column unfit to be a feature, folds that miss a class.
            ConfigError: an argument out of its domain; a study that completed no trial.
            DefinitionMismatch: a stored study of this name holds another definition or other rows.
        """
        frame, codes = training_rows(self, X, y)
        seed = seed_of(self.random_state)
        try:
            train = from_frame(frame, codes, class_names(self.classes_), groups=groups)
            splits = self._splits(train, seed)
        except HpsearchError as e:
            raise ValueError(_in_our_words(e)) from None
        defn = self._definition(seed, len(splits))
        self.study_ = self._search(defn, Rows(train, in_memory_summary(train, splits), splits))
        self.n_splits_ = len(splits)
        self._read_study(defn)
        if self.refit:
            started = time.perf_counter()
            self.best_estimator_ = self._best_estimator(defn).fit(X, y)
            self.refit_time_ = time.perf_counter() - started
        return self

    def _search(self, defn: Definition, rows: Rows) -> optuna.Study:
        """Run the study of ``defn`` on ``rows`` with ``api.run_study``, as ``hpsearch study`` runs one; the study,
        copied into memory when it had no storage of the caller's.

        Raises:
            HpsearchError: as ``run_study``: a storage, a stored study of another definition, a metric the rows lack.
        """
        with _quiet_optuna(), _storage(self.storage) as url:
            run = RunConfig(
                definition=defn,
                storage=url,
                study_name=self.study_name or IN_MEMORY,
                trials=self.n_trials,
                timeout=self.timeout,
                device=self.device,  # type: ignore[arg-type]  # checked in _definition
                quiet=True,
            )
            try:
                outcome = run_study(run, rows=rows, workers=self._workers())
            except ConfigError as e:  # the study's own checks speak the command line's words
                raise ConfigError(_in_our_words(e)) from None
            return outcome.study if self.storage is not None else _in_memory_copy(url, run.study_name)

    def _splits(self, train: Dataset, seed: int) -> list[Split]:
        """The folds: ``make_splits`` for an int (the folds ``hpsearch study`` cuts), else the splitter's."""
        if isinstance(self.cv, int | np.integer) and not isinstance(self.cv, bool):
            return make_splits(train.y, CVConfig(folds=int(self.cv), seed=seed), train.classes, train.groups)
        splitter = check_cv(self.cv, train.y, classifier=True)
        rows = np.arange(len(train))
        found = [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(rows, train.y, train.groups)]
        if len(found) < 2:
            raise ConfigError(f"cv must give two folds or more, but gave {len(found)}")
        return found

    def _definition(self, seed: int, folds: int) -> Definition:
        """The study definition of the arguments: what ``hpsearch study`` reads from a TOML file.

        Raises:
            ConfigError: naming every argument out of its domain, and a setting both fixed and searched.
        """
        fixed = dict(self.params or {})
        raw: dict[str, Any] = {
            "seed": seed,
            "metric": self.scoring,
            "data": {"dataset": IN_MEMORY},
            "cv": {"folds": folds},
            "train": fixed,
            "sampler": self.sampler,
            "pruner": self.pruner,
        }
        if self.space is not None:
            raw["space"] = self.space
        problems: list[str] = []
        check_device(self.device, problems)
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) or self.n_trials < 1:
            problems.append(f"n_trials must be a whole number >= 1, but got {self.n_trials!r}")
        if self.timeout is not None and not (isinstance(self.timeout, int | float) and self.timeout > 0):
            problems.append(f"timeout must be a number of seconds > 0 or None, but got {self.timeout!r}")
        problems += [f"params fixes {name!r}, but space searches it; give it in one" for name in
                     sorted(set(fixed) & set(self.space or {}))]  # fmt: skip
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))
        return definition_from_dict(raw, where=type(self).__name__)

    def _workers(self) -> WorkerConfig:
        """``n_jobs`` processes; one keeps torch's threads as the caller set them, several share this machine's."""
        jobs = available_cores() if self.n_jobs == -1 else max(1, self.n_jobs or 1)
        return WorkerConfig(jobs=jobs, threads=None if jobs == 1 else max(1, torch.get_num_threads() // jobs))

    def _read_study(self, defn: Definition) -> None:
        """``cv_results_``, the best and the simplest trial, from the study's trials.

        Raises:
            ConfigError: no trial completed.
        """
        trials = sorted(self.study_.get_trials(deepcopy=False), key=lambda t: t.number)
        self.cv_results_ = cv_results(trials, defn.metric, self.n_splits_, maximize=defn.direction == "maximize")
        index = {t.number: i for i, t in enumerate(trials)}
        if "complete" not in self.cv_results_["state"]:
            states = ", ".join(f"{n} {word}" for word, n in Counter(self.cv_results_["state"]).items())
            raise ConfigError(
                f"none of the {len(trials)} trials of study {self.study_.study_name!r} completed ({states}): they "
                "diverged (NaN or infinite loss) or were pruned; raise n_trials, or narrow the space's lr range"
            )
        best = choose_trial(self.study_, "best")
        self.best_index_ = index[best.number]
        self.best_params_ = dict(best.params)
        self.best_score_ = float(best.value if best.value is not None else np.nan)
        try:
            self.simplest_index_: int | None = index[choose_trial(self.study_, "simplest").number]
        except ConfigError:  # no trial has every fold's score: nothing to compare
            self.simplest_index_ = None

    def _best_estimator(self, defn: Definition) -> MLPClassifier:
        """An MLPClassifier of the best trial's settings over the definition's, seeded by the study seed."""
        cfg = replace(defn.train, **self.best_params_)
        settings = {k: v for k, v in asdict(cfg).items() if k not in ("seed", "device", "class_weight")}
        weights = "balanced" if cfg.class_weight == "balanced" else None  # a definition holds no weight per class
        return MLPClassifier(**settings, class_weight=weights, device=self.device, random_state=cfg.seed)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``best_estimator_``'s class probabilities."""
        return self._fitted().predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """``best_estimator_``'s labels."""
        return self._fitted().predict(X)

    def _fitted(self) -> MLPClassifier:
        check_is_fitted(self)
        if not self.refit:
            raise AttributeError("MLPSearchCV(refit=False) has no best_estimator_ to predict with; refit=True")
        return self.best_estimator_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed per fold, as MLPClassifier does
        return tags


_OPTIONS = {"--folds ": "cv=", "--metric ": "scoring=", "--jobs ": "n_jobs="}  # the CLI's words -> ours


def _in_our_words(error: Exception) -> str:
    """An error of the shared checks with the command line's options named as MLPSearchCV's arguments."""
    text = str(error)
    for option, argument in _OPTIONS.items():
        text = text.replace(option, argument)
    return text


@contextmanager
def _storage(given: str | Path | None) -> Iterator[str]:
    """The storage URL of ``given``, or of an SQLite file in a temporary folder (removed after) when None:
    a file, not SQLite's ``:memory:``, so that ``n_jobs`` worker processes can share it."""
    if given is not None:
        yield _url(str(given))
        return
    with tempfile.TemporaryDirectory(prefix="hpsearch-") as folder:
        yield _url(str(Path(folder) / "study.db"))


def _in_memory_copy(url: str, study_name: str) -> optuna.Study:
    """The study at ``url`` copied into Optuna's in-memory storage (its file is about to go)."""
    source = open_storage(url)
    try:
        memory = optuna.storages.InMemoryStorage()
        optuna.copy_study(from_study_name=study_name, from_storage=source, to_storage=memory)
        return optuna.load_study(study_name=study_name, storage=memory)
    finally:
        close_storage(source)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's log line per trial off for the duration (a notebook cell would fill with them); restored after."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
