"""Retrain the chosen trial on the whole training split and score it once on the test split.

``choose_for_test`` opens the study, chooses the trial, loads both splits and proves they are the
study's (fingerprint); ``final_test`` retrains with the trial's params and the definition's
seed, evaluates once on the test split, and counts that evaluation on the study, under its lock. It
computes and records; it prints and writes nothing (``render.final_test`` does). The test split
is meant to be looked at once; every run is counted, and the caller warns after the first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sklearn.compose import ColumnTransformer
from torch import nn

from hpsearch.analysis.choose import choose, fold_scores
from hpsearch.analysis.final_record import Scores, document, record
from hpsearch.analysis.test_scores import score
from hpsearch.config import BUNDLED, IN_MEMORY, DataConfig, Definition, TrainConfig
from hpsearch.data import Dataset, changed_columns, fingerprint, load_split, preprocess, summary
from hpsearch.data.inputs import InputSpec, input_spec
from hpsearch.data.preprocess import Fitted
from hpsearch.errors import ConfigError, DefinitionMismatch, TrainingDiverged
from hpsearch.store import load_study, stored_run
from hpsearch.store.models import models_folder
from hpsearch.store.schema import STATE_WORDS, TRIAL_REASON
from hpsearch.training import (
    as_tensors,
    fit,
    resolve_device,
    training_settings,
)
from hpsearch.training.bundle import Header
from hpsearch.training.ensemble import Part


@dataclass(frozen=True)
class FinalTest:
    """A final test as it was recorded on the study: the model, its scores, the final_test.json document."""

    model: nn.Module  # the retrained MLP, on the CPU or the device it trained on; a fold-ensemble's members
    fitted: Fitted | None  # a table's preprocessing, fitted on the whole training split, that the model expects
    scores: Scores
    doc: dict[str, Any]  # the content of final_test.json
    header: Header | None = None  # what model.safetensors says about the model
    shift: np.ndarray | None = None  # raw input -> the MLP's: (x - shift) / scale - offset, per feature
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None  # a table's: see data.preprocess.Fitted.affine
    parts: list[Part] | None = None  # a fold-ensemble's members, as model.safetensors holds them


Affine = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # shift, scale, offset: see training.bundle.Preprocess


@dataclass(frozen=True)
class Chosen:
    """A trial chosen for the final test, with both splits proven to be the study's own rows."""

    study: optuna.Study
    stored: dict[str, Any]  # the study's data summary
    trial: FrozenTrial
    cfg: TrainConfig  # the study's training settings with the trial's params
    train: Dataset
    test: Dataset
    data: DataConfig = field(default_factory=DataConfig)  # where both splits came from
    definition: Definition = field(default_factory=Definition)  # the study's, as stored
    models: Path | None = None  # a fold-ensemble study's kept fold-models (store/models.py)


def choose_for_test(
    url: str,
    study_name: str | None,
    which: str,
    *,
    device: str = "auto",
    data: str | None = None,
    models: str | None = None,
) -> Chosen:
    """Open the study, choose trial ``which``, load both splits and check their fingerprint; train nothing.

    Args:
        url: Optuna storage URL of the study.
        study_name: the study; None: the only one in the storage.
        which: ``best`` (by the study's metric and direction), ``simplest`` (the fewest parameters
            within one standard error of the best; see ``choose_trial``) or a trial number.
        device: ``auto``, ``cpu`` or ``cuda``.
        data: where the study's data are now (a moved file or folder); None: where the study
            found them. The fingerprint proves they are the same rows either way.
        models: a fold-ensemble study's folder of kept fold-models, as ``study --models`` gave it.

    Raises:
        HpsearchError: no such storage, study or trial; a trial that is not complete; data whose
            fingerprint differs from the study's.
    """
    study = load_study(url, study_name)
    defn, stored = stored_run(study)
    if data is not None:
        if defn.data.dataset in BUNDLED:
            bundled = f"the bundled data set {defn.data.dataset!r}"
            raise ConfigError(f"study {study.study_name!r} runs on {bundled}, so --data does not apply")
        defn = replace(defn, data=replace(defn.data, path=data))
    if defn.data.dataset == IN_MEMORY or stored.get("n_test") == 0:
        raise ConfigError(
            f"study {study.study_name!r} was searched on rows given to it in memory (hpsearch.MLPSearchCV, or an "
            f"outer fold of hpsearch nested: {stored.get('test_split')}), so it has no test split to final-test on; "
            "MLPSearchCV's best_estimator_ is its retrained model, and nested CV scores each outer fold itself"
        )
    trial = choose_trial(study, which)
    train, test = load_split(defn.data)
    check_data(train, test, stored, study.study_name)
    cfg = replace(defn.train, **trial.params, device=resolve_device(device))
    folder = models_folder(url, study.study_name, models) if defn.final.model == "fold-ensemble" else None
    return Chosen(study, stored, trial, cfg, train, test, defn.data, defn, folder)


def final_test(chosen: Chosen, url: str, *, out: str = "") -> FinalTest:
    """Retrain the chosen trial on the training split, score it once on the test split, record it on the study.

    Args:
        chosen: from ``choose_for_test``.
        url: the study's storage URL, for the lock under which the result is recorded.
        out: the folder the caller writes the files to, recorded with the result.

    Raises:
        HpsearchError: a diverging retrain; a storage that cannot record.
    """
    if chosen.models is not None:
        from hpsearch.analysis.fold_ensemble import test_fold_ensemble  # here: it builds on this module

        return test_fold_ensemble(chosen, url, out=out)
    with training_settings():  # the figures of a float32 model on every device, whatever the caller set
        model, prep = retrain(chosen.train, chosen.cfg, f"trial {chosen.trial.number}")
        scores = score(model, chosen.test, prep, seed=chosen.cfg.seed)
    found = fingerprint(chosen.train, chosen.test)
    entry = record(chosen.study, chosen.trial, chosen.cfg, scores, found, out, url)
    fitted = None if prep is None or chosen.train.table is None else Fitted.of(prep, chosen.train.table.columns)
    doc = document(chosen.study.study_name, chosen.cfg, chosen.stored, scores, fitted, entry)
    header, (shift, scale, offset) = _bundle(chosen, doc, fitted)
    return FinalTest(model, fitted, scores, doc, header, shift, scale, offset)


def _bundle(chosen: Chosen, doc: dict[str, Any], fitted: Fitted | None) -> tuple[Header, Affine]:
    """The model bundle's header and its input's affine part (a table's scaling, or the pixel scaling)."""
    return describe_model(
        chosen.train,
        chosen.cfg,
        input_spec(chosen.data, chosen.train),
        fitted,
        fingerprint=doc["fingerprint"],
        study=doc["study"],
        trial=doc["trial"],
        params=doc["params"],
        test={"loss": doc["loss"]["test"], **doc["metrics"]["test"], "intervals": doc["intervals"]},
        versions=doc["versions"],
    )


def describe_model(
    train: Dataset,
    cfg: TrainConfig,
    spec: InputSpec,
    fitted: Fitted | None,
    *,
    fingerprint: str,
    study: str,
    trial: int,
    params: dict[str, Any],
    test: dict[str, Any],
    versions: dict[str, str],
) -> tuple[Header, Affine]:
    """The bundle header of an MLP of ``cfg`` trained on ``train`` (input ``spec``, a table's preprocessing
    ``fitted``), and its input's affine part: a table's scaling, or the pixel scaling."""
    offset = None
    if fitted is not None:
        shift, scale, offset = fitted.affine()
    else:
        shift = np.zeros(train.n_features, np.float32)
        scale = np.full(train.n_features, spec.pixel_max, np.float32)
    header = Header.of(
        train,
        cfg,
        spec,
        fingerprint=fingerprint,
        study=study,
        trial=trial,
        params=params,
        test=test,
        versions=versions,
        preprocessing=fitted,
    )
    return header, (shift, scale, offset)


def choose_trial(study: optuna.Study, which: str) -> FrozenTrial:
    """The complete trial ``which`` names: ``best``, ``simplest`` or a trial number.

    ``simplest`` is the one-standard-error choice of ``choose.choose``: of the complete trials
    whose CV mean is within one standard error of the best's, the one with the fewest parameters.

    Raises:
        ConfigError: no complete trial, not a number, no such trial, or a trial that is not complete.
    """
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if which in ("best", "simplest") and not complete:
        counts = Counter(STATE_WORDS[t.state] for t in trials)
        states = ", ".join(f"{n} {word}" for word, n in counts.items()) or "no trials"
        raise ConfigError(f"study {study.study_name!r} has no complete trial to test ({states}); run hpsearch study")
    if which == "best":
        return study.best_trial
    if which == "simplest":
        return _simplest(study, complete)
    try:
        number = int(which)
    except ValueError:
        raise ConfigError(f"which trial: give 'best', 'simplest' or a trial number, but got {which!r}") from None
    found = [t for t in trials if t.number == number]
    if not found:
        span = f"its trials are numbered 0 to {len(trials) - 1}" if trials else "it holds no trial"
        raise ConfigError(f"no trial {number} in study {study.study_name!r}: {span}")
    trial = found[0]
    if trial.state != TrialState.COMPLETE:
        reason = trial.user_attrs.get(TRIAL_REASON, "no reason stored")
        best = f" (the best is trial {study.best_trial.number})" if complete else ""
        raise ConfigError(
            f"trial {number} of study {study.study_name!r} is {STATE_WORDS[trial.state]}: {reason}; "
            f"only a complete trial can be final-tested{best}"
        )
    return trial


def _simplest(study: optuna.Study, complete: list[FrozenTrial]) -> FrozenTrial:
    defn, _ = stored_run(study)
    choice = choose(
        *fold_scores(complete, defn.metric),
        folds=defn.cv.folds,
        maximize=defn.direction == "maximize",
        repeats=defn.cv.repeats,
    )
    if choice is None:
        n = defn.cv.folds * defn.cv.repeats
        raise ConfigError(
            f"no complete trial of study {study.study_name!r} has a score on each of its {n} folds, "
            "so none is within one standard error of the best; give 'best' or a trial number"
        )
    return next(t for t in complete if t.number == choice.simplest)


def check_data(train: Dataset, test: Dataset, stored: dict[str, Any], study_name: str) -> None:
    """Refuse data whose columns or fingerprint are not the ones the study recorded.

    Raises:
        DefinitionMismatch: a table's columns are read otherwise, or the rows of either split
            differ from those the study searched on.
    """
    now = summary(train, test, "")
    changed = changed_columns(stored, now)
    if changed is not None:
        raise DefinitionMismatch(
            f"the table's columns differ from study {study_name!r}'s: {changed}; final-test needs the study's own data"
        )
    found = now["fingerprint"]
    if stored.get("fingerprint") == found:
        return
    raise DefinitionMismatch(
        f"the data differ from study {study_name!r}'s: it was run on {stored.get('n_train')} + {stored.get('n_test')} "
        f"rows, fingerprint {str(stored.get('fingerprint'))[:12]}; {train.name} now gives {len(train)} + "
        f"{len(test)} rows, fingerprint {found[:12]}; final-test needs the study's own rows"
    )


def retrain(train: Dataset, cfg: TrainConfig, what: str) -> tuple[nn.Sequential, ColumnTransformer | None]:
    """Fit the trial's MLP on every training row; a table's preprocessing is fitted on those rows only.

    ``what`` names the model in the error (``trial 3``); the MLP takes fold 0's seed stream of ``cfg.seed``.

    Raises:
        ConfigError: the training loss became NaN or infinite.
    """
    x, prep = train.x, None
    if train.table is not None:
        prep = preprocess.fit(train.table)
        x = preprocess.inputs(prep, train.table)
    xt, yt = as_tensors(x, train.y, cfg.device)
    try:
        return fit(xt, yt, train.n_classes, cfg), prep
    except TrainingDiverged as e:
        raise ConfigError(f"retraining {what} on the whole training split diverged: {e}") from None
