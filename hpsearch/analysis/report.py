"""Study -> plain DataFrames, one per section, with the loss kept apart from the metrics.

``build_report`` builds one DataFrame per section (summary, CV loss per trial, CV metrics per
trial, the best trial fold by fold, the top trials compared with the best and the simplest as
good (``choose``), parameter importances, final tests) and orders the per-trial tables; the
``render`` package writes and prints them. Nothing is trained: every figure is one the study
stored, so the report can be rebuilt from the study file alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpsearch.analysis.choose import Choice, choose, fold_scores
from hpsearch.analysis.curves import learning_curves
from hpsearch.config import FIGURES, METRIC_NAMES, Definition, metric_names
from hpsearch.errors import ConfigError, did_you_mean
from hpsearch.store.schema import (
    STATE_WORDS,
    STUDY_FINAL_TESTS,
    STUDY_OUTER_FOLD,
    TRIAL_DEVICE,
    TRIAL_FOLDS,
    TRIAL_MACS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_REASON,
    TRIAL_RETRY_OF,
    TRIAL_STD,
)
from hpsearch.text import format_params
from hpsearch.training import plan_waves

_MIN_COMPLETE_FOR_IMPORTANCES = 5  # fANOVA over fewer trials ranks noise
COMPARED = 10  # the top trials compared with the best, fold by fold
_ENDS = ((0, "_low"), (1, "_high"))  # a 95% interval's ends (final test: bootstrap over the test rows)


@dataclass(frozen=True)
class Report:
    """Every section of a report as plain data; rendering only formats and draws it."""

    study_name: str
    metric: str  # the study's objective, a CV mean
    direction: str  # "maximize" or "minimize"
    params: tuple[str, ...]  # searched parameters, one column each in the per-trial tables
    figures: tuple[str, ...]  # "loss" and the metrics of the study's data (ROC AUC: two classes)
    ordered_by: str  # how the per-trial tables are ordered, in words
    summary: pd.DataFrame  # item, value
    loss: pd.DataFrame  # per trial: CV mean and std of the cross-entropy on the validation folds
    metrics: pd.DataFrame  # per trial: CV mean and std of each metric (blank where a trial lacks it)
    best_folds: pd.DataFrame | None  # the best trial's figures on each fold; None: none completed
    comparison: pd.DataFrame | None  # the top trials (and the simplest) against the best; None: see notes
    choice: Choice | None  # every complete trial against the best, and the one-SE choice
    importances: pd.DataFrame | None  # param, importance; None: see notes
    final_test: pd.DataFrame | None  # test-split results with 95% intervals, oldest first; None: never tested
    curves: pd.DataFrame | None  # trial, state, epoch, value: mean validation metric after each epoch
    test_evaluations: int  # how many times final-test has used the test split
    notes: dict[str, str]  # section -> the sentence shown where its table is missing

    def tables(self) -> dict[str, pd.DataFrame]:
        """The sections that exist, keyed by their file stem (``loss`` -> ``loss.csv``)."""
        tables = {"summary": self.summary, "loss": self.loss, "metrics": self.metrics}
        optional = {
            "best_trial_folds": self.best_folds,
            "comparison": self.comparison,
            "importances": self.importances,
            "final_test": self.final_test,
            "learning_curves": self.curves,
        }
        return tables | {stem: df for stem, df in optional.items() if df is not None}


def build_report(
    study: optuna.Study, defn: Definition, data: dict[str, Any], *, sort: str | None = None, compared: int = COMPARED
) -> Report:
    """Every section of the report of ``study``, computed from what its trials stored.

    Args:
        study: an hpsearch study.
        defn, data: what ``storage.stored_run`` returns for it.
        sort: column of the per-trial tables to order them by; None: the study metric, best first.
        compared: how many of the best trials the comparison table holds; the simplest trial is
            added when it ranks lower.

    Raises:
        ConfigError: ``sort`` names no column of the per-trial tables.
    """
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    params = tuple(spec.name for spec in defn.space)
    figures = ("loss", *metric_names(data.get("n_classes")))
    loss, metrics, ordered_by = _ordered(
        _per_trial(trials, ("loss",), defn), _per_trial(trials, figures[1:], defn), sort, defn
    )
    notes: dict[str, str] = {}
    if best is None:
        reached = "the loss and metrics tables list what its trials reached" if trials else "it holds no trial"
        notes["best_trial_folds"] = f"No trial has completed yet, so the study has no best trial; {reached}."
    choice = choose(
        *fold_scores(complete, defn.metric),
        folds=defn.cv.folds,
        maximize=defn.direction == "maximize",
        repeats=defn.cv.repeats,
    )
    if choice is None:
        n = defn.cv.folds * defn.cv.repeats
        notes["comparison"] = f"No complete trial has a score on each of the {n} folds to compare."
    importances = _importances(study, len(complete), defn.seed, notes)
    entries: list[dict[str, Any]] = list(study.user_attrs.get(STUDY_FINAL_TESTS) or [])
    return Report(
        study_name=study.study_name,
        metric=defn.metric,
        direction=defn.direction,
        params=params,
        figures=figures,
        ordered_by=ordered_by,
        summary=_summary(study.study_name, defn, data, trials, best, choice, study.user_attrs.get(STUDY_OUTER_FOLD)),
        loss=loss,
        metrics=metrics,
        best_folds=None if best is None else _best_folds(best, figures, defn),
        comparison=None if choice is None else _comparison(choice, complete, defn.metric, compared),
        choice=choice,
        importances=importances,
        final_test=_final_tests(entries, params, figures) if entries else None,
        curves=learning_curves(trials, defn),
        test_evaluations=max((int(e.get("n_test_evaluations", 0)) for e in entries), default=0) or len(entries),
        notes=notes,
    )


def _summary(
    name: str,
    defn: Definition,
    data: dict[str, Any],
    trials: list[FrozenTrial],
    best: FrozenTrial | None,
    choice: Choice | None,
    outer: dict[str, Any] | None = None,
) -> pd.DataFrame:
    states = [STATE_WORDS[t.state] for t in trials]
    seconds = [t.duration.total_seconds() for t in trials if t.duration is not None]
    searched = {spec.name for spec in defn.space}
    rows: list[tuple[str, Any]] = [
        ("study", name),
        ("data set", data.get("name", defn.data.dataset)),
        ("train rows", data.get("n_train")),
        ("test rows", data.get("n_test")),
        ("test split", data.get("test_split")),
        ("features", data.get("n_features")),
        *((f"{kind} columns", ", ".join(names) or "none") for kind, names in data.get("columns", {}).items()),
        ("classes", data.get("n_classes")),
        ("folds (K)", defn.cv.folds),
        *((("repeats (R)", defn.cv.repeats),) if defn.cv.repeats > 1 else ()),
        ("epochs per fold", "searched" if "epochs" in searched else defn.train.epochs),
        ("metric", f"CV mean {defn.metric}"),
        ("direction", defn.direction),
        ("trials", len(trials)),
        *((f"trials {state}", states.count(state)) for state in ("complete", "pruned", "failed", "running")),
        ("devices", _devices(trials)),
        ("total trial time (s)", round(sum(seconds), 2)),
        ("mean trial time (s)", round(sum(seconds) / len(seconds), 2) if seconds else None),
        ("best trial", None if best is None else best.number),
        (f"best CV mean {defn.metric}", None if best is None else best.value),
        ("best params", None if best is None else format_params(best.params)),
        ("trials tied with the best", None if choice is None else int(choice.table["tied"].sum()) - 1),
        ("simplest trial (1-SE rule)", None if choice is None else choice.simplest),
        *_outer_fold(outer, defn.metric),
    ]
    return pd.DataFrame(rows, columns=["item", "value"], dtype=object)


def _outer_fold(outer: dict[str, Any] | None, metric: str) -> list[tuple[str, Any]]:
    """An outer fold study of ``hpsearch nested``: its chosen trial's score on the fold's held-out rows."""
    if outer is None:
        return []
    held = f"{outer['outer'][metric]:.4f} on {outer['n_held']} held-out rows"
    return [
        ("nested CV outer fold", f"{outer['fold']}: trial {outer['trial']} retrained on {outer['n_fit']} rows"),
        (f"outer {metric}", f"{held} (inner CV {outer['inner']:.4f})"),
    ]


def _devices(trials: list[FrozenTrial]) -> str | None:
    """``cpu: 50 trials``; a study that mixed devices says what that means for its figures."""
    counts = Counter(str(t.user_attrs[TRIAL_DEVICE]) for t in trials if TRIAL_DEVICE in t.user_attrs)
    if not counts:
        return None  # a study stored before trials recorded their device
    words = ", ".join(f"{device}: {n} trial{'s' if n > 1 else ''}" for device, n in counts.most_common())
    if len({device.split(" ")[0] for device in counts}) > 1:
        words += " (mixed: the same parameters draw other dropout masks and round otherwise on another device)"
    return words


def _per_trial(trials: list[FrozenTrial], figures: tuple[str, ...], defn: Definition) -> pd.DataFrame:
    # A pruned or failed trial keeps the folds it finished, so its mean covers fewer folds.
    params = tuple(spec.name for spec in defn.space)
    retried = {t.user_attrs[TRIAL_RETRY_OF]: t.number for t in trials if TRIAL_RETRY_OF in t.user_attrs}
    rows = []
    for t in trials:
        mean, std = t.user_attrs.get(TRIAL_MEAN) or {}, t.user_attrs.get(TRIAL_STD) or {}
        row: dict[str, Any] = {
            "trial": t.number,
            "state": STATE_WORDS[t.state],
            "folds": len(t.user_attrs.get(TRIAL_FOLDS, [])),
        }
        for name in figures:
            row[f"{name}_mean"], row[f"{name}_std"] = mean.get(name), std.get(name)
        row["n_params"] = t.user_attrs.get(TRIAL_PARAMS_COUNT)
        row["duration_s"] = None if t.duration is None else round(t.duration.total_seconds(), 3)
        row["device"] = t.user_attrs.get(TRIAL_DEVICE)
        row["reached"] = _reached(t, defn)
        row |= {p: t.params.get(p) for p in params}
        row["reason"] = t.user_attrs.get(TRIAL_REASON) or _retry_note(t, retried)
        rows.append(row)
    columns = ["trial", "state", "folds", *(f"{n}_{s}" for n in figures for s in ("mean", "std"))]
    columns += ["n_params", "duration_s", "device", "reached", *params, "reason"]
    return pd.DataFrame(rows, columns=columns)


def _reached(t: FrozenTrial, defn: Definition) -> str | None:
    """How far a trial got, from the last step it reported: ``wave 1/3, epoch 4/10`` (``epoch 4/10``
    without waves); a complete trial that reported nothing (``--pruner none``) ran every epoch."""
    epochs, folds = int(t.params.get("epochs", defn.train.epochs)), defn.cv.folds * defn.cv.repeats
    if not t.intermediate_values:
        return f"epoch {epochs}/{epochs}" if t.state == TrialState.COMPLETE else None
    last = max(t.intermediate_values)
    if defn.pruner.name == "wilcoxon":  # its steps are folds, each reported after its last epoch
        return f"{len(t.intermediate_values)}/{folds} folds"
    wave, epoch = divmod(last, epochs)  # the race: wave w's epoch e is step w*E + e
    waves = len(plan_waves(folds, defn.pruner.wave_folds)) if defn.pruner.name == "race" else 1
    return f"epoch {epoch + 1}/{epochs}" if waves == 1 else f"wave {wave + 1}/{waves}, epoch {epoch + 1}/{epochs}"


def _retry_note(t: FrozenTrial, retried: dict[int, int]) -> str | None:
    """Why a trial is a retry, or was retried: its worker stopped beating (see storage.py)."""
    if t.number in retried:
        return f"its worker stopped (no heartbeat); retried as trial {retried[t.number]}"
    if TRIAL_RETRY_OF in t.user_attrs:
        return f"retry of trial {t.user_attrs[TRIAL_RETRY_OF]}, whose worker stopped"
    return None


def _ordered(
    loss: pd.DataFrame, metrics: pd.DataFrame, sort: str | None, defn: Definition
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Both per-trial tables in one order, so row i is the same trial in each."""
    both = pd.concat([loss, metrics[[c for c in metrics.columns if c not in loss.columns]]], axis=1)
    if sort is None:
        key, ascending = f"{defn.metric}_mean", defn.direction == "minimize"
        # A pruned trial's mean covers fewer folds and is not comparable, so complete trials rank first.
        ranked = both.assign(_unfinished=both["state"] != "complete")
        order = ranked.sort_values(["_unfinished", key], ascending=[True, ascending], na_position="last").index
        words = f"{key}, {'lowest' if ascending else 'highest'} first, complete trials first"
    else:
        key = f"{sort}_mean" if sort in FIGURES else sort
        if key not in both.columns:
            valid = [str(c) for c in both.columns]
            hint = did_you_mean(sort, valid, label=None)
            raise ConfigError(f"cannot sort by {sort!r}{hint}: the columns are {', '.join(valid)}")
        # Higher is better for the metrics' means; everything else reads naturally from low to high.
        ascending = not (key.endswith("_mean") and key.removesuffix("_mean") in METRIC_NAMES)
        order = both.sort_values(key, ascending=ascending, na_position="last", kind="stable").index
        words = f"{key}, {'lowest' if ascending else 'highest'} first"
    return loss.loc[order].reset_index(drop=True), metrics.loc[order].reset_index(drop=True), words


def _best_folds(best: FrozenTrial, figures: tuple[str, ...], defn: Definition) -> pd.DataFrame:
    # a fold stored before a metric existed has no figure for it: a blank cell; with repeats, fold
    # i is fold i mod K of repeat i // K
    folds, k, repeated = best.user_attrs.get(TRIAL_FOLDS, []), defn.cv.folds, defn.cv.repeats > 1
    rows = [
        {"trial": best.number, **({"repeat": i // k + 1, "fold": i % k + 1} if repeated else {"fold": i + 1})}
        | {n: fold.get(n) for n in figures}
        for i, fold in enumerate(folds)
    ]
    return pd.DataFrame(rows, columns=["trial", *(["repeat"] if repeated else []), "fold", *figures])


def _comparison(choice: Choice, complete: list[FrozenTrial], metric: str, compared: int) -> pd.DataFrame:
    """The first ``compared`` rows of the choice, the simplest's row too, named for people."""
    table = choice.table
    shown = table[(table["rank"] <= compared) | (table["trial"] == choice.simplest)].reset_index(drop=True)
    macs = {t.number: t.user_attrs.get(TRIAL_MACS) for t in complete}
    roles = {choice.best: "best", choice.simplest: "simplest (1-SE)"}
    if choice.best == choice.simplest:
        roles[choice.best] = "best and simplest (1-SE)"
    numbers = [int(n) for n in shown["trial"]]
    shown["choice"] = pd.Series([roles.get(n) for n in numbers], dtype=object)
    shown["macs"] = pd.Series([macs.get(n) for n in numbers], dtype="Int64")
    columns = ["rank", "trial", "choice", "mean", "std", "n_params", "macs", "diff", "ci_low", "ci_high", "t", "p"]
    names = {"mean": f"{metric}_mean", "std": f"{metric}_std", "diff": "diff_vs_best"}
    return shown[[*columns, "tied", "within_1se", "pareto"]].rename(columns=names)


def _importances(study: optuna.Study, n_complete: int, seed: int, notes: dict[str, str]) -> pd.DataFrame | None:
    if n_complete < _MIN_COMPLETE_FOR_IMPORTANCES:
        notes["importances"] = (
            f"Parameter importances need at least {_MIN_COMPLETE_FOR_IMPORTANCES} complete trials; "
            f"the study has {n_complete}."
        )
        return None
    try:
        # fANOVA seeded by the study's seed: the same study always reports the same importances.
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as e:  # e.g. no parameter varies, or the objective does not
        notes["importances"] = f"Parameter importances cannot be computed for these trials: {e}"
        return None
    if not values:
        notes["importances"] = "No searched parameter varies across the complete trials, so none has an importance."
        return None
    return pd.DataFrame({"param": list(values), "importance": [float(v) for v in values.values()]})


def _final_tests(entries: list[dict[str, Any]], params: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for i, entry in enumerate(entries):
        test, chosen, ci = entry.get("test") or {}, entry.get("params") or {}, entry.get("test_ci") or {}
        rows.append(
            {
                "run": i + 1,
                "trial": entry.get("trial"),
                "model": entry.get("model", "retrain"),  # the final model the definition declared
                "created": entry.get("created"),
                "n_test_evaluations": entry.get("n_test_evaluations"),
                **{f"test_{n}": test.get(n) for n in names},
                **{f"test_{n}_ci{end}": (ci.get(n) or [None, None])[i] for n in names for i, end in _ENDS},
                **{p: chosen.get(p) for p in params},
            }
        )
    figures = [c for n in names for c in (f"test_{n}", f"test_{n}_ci_low", f"test_{n}_ci_high")]
    columns = ["run", "trial", "model", "created", "n_test_evaluations", *figures, *params]
    return pd.DataFrame(rows, columns=columns)
