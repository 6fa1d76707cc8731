"""hpsearch from Python: nested cross-validation of a study definition, each outer fold a study of its own.

``nested_cv`` runs, for each of K outer folds of the training split, the study ``hpsearch study`` would
run (the same ``run_study``, the outer fold's other rows given as the rows), all in one storage under
the names ``<study>-outer<k>of<K>``: each is resumable, and ``hpsearch report`` opens it like any
study. Then ``analysis.nested`` retrains each chosen trial and scores it on its outer fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hpsearch.analysis.nested import Nested, OuterFold, judge_outer_fold, summarize
from hpsearch.api.study import as_run, run_study
from hpsearch.config import CVConfig, Definition, RunConfig
from hpsearch.data import Dataset, load_training
from hpsearch.data.arrays import in_memory_summary, subset
from hpsearch.errors import ConfigError
from hpsearch.search import Rows, WorkerConfig
from hpsearch.training import Split, make_splits, resolve_device


def outer_study_name(study_name: str, fold: int, outer: int) -> str:
    """The name of outer fold ``fold`` (1-based) of ``outer``'s study: ``digits-outer2of5``."""
    return f"{study_name}-outer{fold}of{outer}"


def nested_cv(
    definition: Definition | RunConfig | str | Path | None = None,
    *,
    outer: int = 5,
    storage: str = "sqlite:///nested.db",
    trials: int = 20,
    workers: WorkerConfig | None = None,
    on_fold: Callable[[OuterFold], None] | None = None,
    **config: Any,
) -> Nested:
    """Nested CV: the whole search, run in each of ``outer`` outer folds of the training split, judged on the fold.

    Args:
        definition: as ``run_study``'s: a RunConfig, a Definition, a TOML path, or None (the default).
        outer: K of the outer K-fold (stratified, grouped by a table's groups, seeded by the study seed).
        storage: where the ``outer`` studies live; running again continues them.
        trials: finished trials each outer fold's study should hold.
        workers: ``--jobs``; None: one worker here.
        on_fold: called with each outer fold once judged (a progress line).
        **config: further ``run_config`` arguments: study_name, timeout (per outer study), device, sets,
            and the options (folds=3, dataset="digits", epochs=2, ...).

    Returns:
        The outer folds, their mean and t interval, and the inner-vs-outer gap; each outer study records
        its fold (``STUDY_OUTER_FOLD``).

    Raises:
        HpsearchError: bad data, definition or storage; too few rows of a class for ``outer`` folds, or for the
            inner folds of an outer fold's rows; a stored outer study of another definition or other rows.
    """
    cfg = as_run(definition, storage=storage, trials=trials, **config)
    defn = cfg.definition
    train, _ = load_training(defn.data)  # the training split: the test split stays for final-test
    outer_cv = replace(defn.cv, folds=outer, repeats=1)
    base = replace(defn.train, device=resolve_device(cfg.device))
    judged: list[OuterFold] = []
    for k, (fit_rows, held_rows) in enumerate(_outer_splits(train, outer_cv)):
        searched, held = subset(train, fit_rows), subset(train, held_rows)
        splits = make_splits(searched.y, defn.cv, searched.classes, searched.groups)
        run = replace(cfg, study_name=outer_study_name(cfg.study_name, k + 1, outer))
        where = f"outer fold {k + 1} of {outer}: {len(held)} rows of the training split, held out"
        rows = Rows(searched, in_memory_summary(searched, splits, where), splits)
        outcome = run_study(run, rows=rows, workers=workers)
        judged.append(judge_outer_fold(outcome.study, k + 1, searched, held, base, defn.metric))
        if on_fold is not None:
            on_fold(judged[-1])
    return summarize(judged, defn.metric)


def _outer_splits(train: Dataset, cv: CVConfig) -> list[Split]:
    """The outer folds of the training split: ``make_splits`` of the seed role ``"outer"``.

    Raises:
        ConfigError: fewer than two outer folds, or more than the smallest class's rows (or the groups).
    """
    if cv.folds < 2:
        raise ConfigError(f"--outer must be a whole number >= 2, but got {cv.folds}")
    try:
        return make_splits(train.y, cv, train.classes, train.groups, role="outer")
    except ConfigError as e:
        raise ConfigError(f"outer folds: {str(e).replace('--folds', '--outer')}") from None
