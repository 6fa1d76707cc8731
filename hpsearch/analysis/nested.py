"""Nested cross-validation: how good the whole procedure (search, choose, retrain) is on rows it never saw.

The training split is cut into K outer folds (seed role ``"outer"``, apart from every study's own
folds). For each, a study searches on the other K-1 parts alone, with its own inner K-fold CV; its
best trial is retrained on those rows (final-test's ``retrain``) and scored once on the outer fold's
held-out rows (final-test's ``score``). The K outer scores estimate the procedure, with a t interval
over the folds; the chosen trials' inner CV means, beside them, show how optimistic choosing by the
inner CV is: the gap. The test split is not used: it stays for ``final-test``.

Computed and recorded here (on each outer fold's study, ``STUDY_OUTER_FOLD``); printed elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd

from hpsearch.analysis.final_test import choose_trial, retrain
from hpsearch.analysis.intervals import LEVEL, t_interval
from hpsearch.analysis.test_scores import score
from hpsearch.config import TrainConfig
from hpsearch.data import Dataset
from hpsearch.store.schema import STUDY_OUTER_FOLD
from hpsearch.training import training_settings


@dataclass(frozen=True)
class OuterFold:
    """One outer fold: the trial its study chose, that trial's inner CV mean, and its score on the held-out rows."""

    fold: int  # 1-based
    study: str
    trial: int
    params: dict[str, Any]
    inner: float  # the chosen trial's inner CV mean of the study metric (what the choice was made by)
    outer: dict[str, float]  # loss and metrics of the retrained trial on the outer fold's held-out rows
    n_fit: int  # rows the study searched and the trial was retrained on
    n_held: int  # the outer fold's held-out rows


@dataclass(frozen=True)
class Nested:
    """What nested CV found: the outer folds, the outer scores' mean and interval, the inner-vs-outer gap."""

    metric: str
    folds: list[OuterFold]
    mean: float  # mean outer score of the metric
    interval: tuple[float, float]  # its t interval at LEVEL over the outer folds
    inner: float  # mean of the chosen trials' inner CV means
    gap: float  # how much better the inner CV said the chosen trials were than the outer folds found (> 0: optimistic)
    level: float = LEVEL

    def table(self) -> pd.DataFrame:
        """One row per outer fold: the chosen trial, its inner CV mean and outer score of the metric, the gap
        between them, and the rows searched and held out."""
        rows = [
            {
                "fold": f.fold,
                "study": f.study,
                "trial": f.trial,
                "inner cv": f.inner,
                "outer": f.outer[self.metric],
                "gap": _gap(f.inner, f.outer[self.metric], self.metric),
                "searched": f.n_fit,
                "held out": f.n_held,
            }
            for f in self.folds
        ]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every outer fold, the mean with its interval, the inner mean and the gap."""
        return {
            "metric": self.metric,
            "mean": self.mean,
            "interval": list(self.interval),
            "level": self.level,
            "interval_method": f"Student's t over the {len(self.folds)} outer folds",
            "inner_mean": self.inner,
            "gap": self.gap,
            "folds": [asdict(f) for f in self.folds],
        }


def judge_outer_fold(
    study: optuna.Study, fold: int, searched: Dataset, held: Dataset, base: TrainConfig, metric: str
) -> OuterFold:
    """Retrain the study's best trial on ``searched`` and score it once on ``held``; recorded on the study.

    A study that recorded this judgement of its best trial already returns it as recorded (a resumed run).

    Raises:
        ConfigError: the study has no complete trial, or the retrain diverged.
    """
    best = choose_trial(study, "best")
    stored = study.user_attrs.get(STUDY_OUTER_FOLD)
    if stored is not None and stored.get("trial") == best.number:
        return OuterFold(**stored)
    cfg = replace(base, **best.params)
    with training_settings():  # final-test's figures: a float32 model on every device
        model, prep = retrain(searched, cfg, f"trial {best.number} of study {study.study_name!r}")
        scores = score(model, held, prep, seed=cfg.seed)
    judged = OuterFold(
        fold=fold,
        study=study.study_name,
        trial=best.number,
        params=dict(best.params),
        inner=float(best.value if best.value is not None else math.nan),
        outer={"loss": scores.loss, **scores.metrics},
        n_fit=len(searched),
        n_held=len(held),
    )
    study.set_user_attr(STUDY_OUTER_FOLD, asdict(judged))
    return judged


def summarize(folds: list[OuterFold], metric: str) -> Nested:
    """The outer scores' mean and t interval, and the mean gap between the inner CV and the outer folds."""
    outer = np.array([f.outer[metric] for f in folds], dtype=np.float64)
    inner = np.array([f.inner for f in folds], dtype=np.float64)
    return Nested(
        metric=metric,
        folds=folds,
        mean=float(outer.mean()),
        interval=_bounded(t_interval(outer), metric),
        inner=float(inner.mean()),
        gap=_gap(float(inner.mean()), float(outer.mean()), metric),
    )


def _bounded(interval: tuple[float, float], metric: str) -> tuple[float, float]:
    """A metric's interval within [0, 1], where every metric lies (a t interval of scores near 1 passes it)."""
    if metric == "loss":
        return interval
    return max(0.0, interval[0]), min(1.0, interval[1])


def _gap(inner: float, outer: float, metric: str) -> float:
    """How much better the inner CV figure is than the outer one: inner - outer, or outer - inner for the loss."""
    return outer - inner if metric == "loss" else inner - outer
