"""Choosing honestly: which trials the best really beats, and the simplest one that is as good.

Every trial of a study is scored on the same K folds (one seeded split), so the fold scores of
two trials are paired. Two questions are answered from those scores alone, nothing retrained:

* **Is the best really the best?** Each trial is compared with the best on their K paired fold
  differences by the corrected resampled t-test (Nadeau and Bengio, 2003). The K training sets
  of K-fold CV overlap, so the fold differences are correlated and the plain paired t-test's
  variance ``var(d) / K`` is too small; the correction inflates it to
  ``(1/K + n_val/n_train) * var(d)``, where ``n_val/n_train`` is the size of a validation fold
  over that of its training folds: ``1/(K-1)`` in K-fold CV. Repeated K-fold (R shuffles of K
  folds, ``[cv] repeats``) gives n = R x K paired differences, and the same correction holds
  with n in place of K: Bouckaert and Frank's corrected repeated k-fold cv test (PAKDD 2004),
  ``t = mean(d) / sqrt((1/(R K) + 1/(K-1)) * var(d))`` over all R x K differences (``var``
  with ddof=1), R x K - 1 degrees of freedom.
* **The one-standard-error rule** (Hastie, Tibshirani and Friedman, *The Elements of Statistical
  Learning*, 7.10): of the trials whose CV mean is within one standard error of the best's, take
  the one with the fewest parameters. The standard error is the std of the best's n = R x K fold
  scores over sqrt(n), as caret's ``oneSE`` takes it over its resamples.

Only complete trials with a finite score on each of the R x K folds take part; ``fold_scores``
reads them from the trials, and the rest works on plain mappings and DataFrames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial
from scipy import stats

from hpsearch.store.schema import TRIAL_FOLDS, TRIAL_PARAMS_COUNT

ALPHA = 0.05  # significance level of the comparison with the best: tied means p >= ALPHA

_COLUMNS = ["rank", "trial", "mean", "std", "n_params", "diff", "ci_low", "ci_high", "t", "p"]
_COLUMNS += ["tied", "within_1se", "pareto"]


class PairedTest(NamedTuple):
    """The corrected resampled t-test of one trial against another on paired fold scores."""

    diff: float  # mean of the fold differences: the difference of the two CV means
    ci_low: float  # confidence interval of ``diff`` at level 1 - alpha
    ci_high: float
    t: float  # corrected t statistic, n-1 degrees of freedom (n = R x K paired fold scores)
    p: float  # two-sided p-value


@dataclass(frozen=True)
class Choice:
    """What ``choose`` found; ``table`` holds every trial that took part, best first."""

    # rank, trial, mean, std (ddof=1 over the folds), n_params, then against the best: diff (trial
    # minus best, in the metric's units), ci_low, ci_high, t, p, tied, within_1se, pareto
    table: pd.DataFrame
    best: int  # trial number of the best CV mean
    simplest: int  # trial number the one-standard-error rule picks
    best_se: float  # standard error of the best's CV mean: its fold std (ddof=1) / sqrt(R x K)
    threshold: float  # the one-SE bound: the best's mean minus best_se (loss: plus)
    folds: int  # K
    ratio: float  # n_val / n_train of one fold, in the corrected variance
    alpha: float
    left_out: tuple[int, ...]  # trials given without a finite score on each of the R x K folds
    repeats: int = 1  # R of repeated K-fold: each trial has R x K paired fold scores

    @property
    def scores(self) -> int:
        """R x K: the paired fold scores of each trial."""
        return self.repeats * self.folds


def corrected_ttest(diffs: Sequence[float], ratio: float, *, alpha: float = ALPHA) -> PairedTest:
    """The corrected resampled t-test (Nadeau and Bengio, 2003) on n paired fold differences.

    With ``d`` the n differences, ``s2 = (1/n + ratio) * var(d, ddof=1)`` is the corrected
    variance of their mean, ``t = mean(d) / sqrt(s2)`` has n-1 degrees of freedom, the p-value is
    two-sided and the interval is ``mean(d) ± t_{1-alpha/2, n-1} * sqrt(s2)``, so it holds 0
    exactly when ``p >= alpha``. ``ratio=0`` gives the plain paired t-test. n is K for K-fold CV,
    R x K for R repeats of it (Bouckaert and Frank's corrected repeated k-fold cv test).

    Args:
        diffs: one difference per fold, the same fold order for both trials.
        ratio: n_val / n_train of one fold; ``1/(K-1)`` for K-fold CV, repeated or not.
        alpha: one minus the confidence level of the interval.

    Returns:
        The mean difference, its interval, t and p. Differences without spread give an interval
        of width 0 and p = 1 when they are all 0, else p = 0 and an infinite t.

    Raises:
        ValueError: fewer than two differences, a non-finite one, or a negative ratio.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2 or not np.isfinite(d).all() or ratio < 0:
        raise ValueError(f"need two or more finite fold differences and ratio >= 0, but got {diffs=}, {ratio=}")
    k = d.size
    mean = float(d.mean())
    variance = (1 / k + ratio) * float(d.var(ddof=1))
    if variance == 0:
        # identical fold differences: no spread to test against; all zero means the same scores
        return PairedTest(mean, mean, mean, 0.0 if mean == 0 else math.copysign(math.inf, mean), float(mean == 0))
    scale = math.sqrt(variance)
    t = mean / scale
    half = float(stats.t.ppf(1 - alpha / 2, k - 1)) * scale
    return PairedTest(mean, mean - half, mean + half, t, float(2 * stats.t.sf(abs(t), k - 1)))


def choose(
    scores: Mapping[int, Sequence[float]],
    n_params: Mapping[int, int | None],
    *,
    folds: int,
    maximize: bool,
    alpha: float = ALPHA,
    repeats: int = 1,
) -> Choice | None:
    """Compare every trial with the best on its paired fold scores; pick the simplest that is as good.

    The best has the best mean of its n = R x K fold scores (the study's CV mean; the lower trial
    number on a tie). Each other trial gets ``corrected_ttest(trial - best, 1/(K-1))`` over the n
    paired differences and is *tied* with the best when its p-value is at least ``alpha``; the
    best counts as tied with itself. The one-SE rule takes ``se = std / sqrt(n)`` of the best's
    fold scores (sample std, ddof=1, the same ``cv_std`` the study stores; this plain standard
    error ignores the overlap of the folds, as the rule always has) and, of the trials with a
    mean at least the best's minus
    ``se`` (for a loss: at most plus ``se``), picks the fewest parameters, then the better
    mean, then the lower trial number. A trial is on the Pareto front when no trial has at most
    its parameters and a better mean.

    Args:
        scores: trial number -> the study's metric on each fold, in fold order.
        n_params: trial number -> its parameter count; a trial with none is never the simplest
            and not on the Pareto front.
        folds: K, the study's number of folds.
        maximize: True when higher is better (accuracy, F1); False for the loss.
        alpha: significance level of the comparison.
        repeats: R of repeated K-fold; a trial without R x K finite scores is left out.

    Returns:
        The choice, or None when no trial has R x K finite fold scores.
    """
    ratio = 1 / (folds - 1)  # a validation fold holds 1/K of the rows and its training folds (K-1)/K
    n_scores = repeats * folds
    kept = {n: np.asarray(s, dtype=np.float64) for n, s in scores.items() if len(s) == n_scores}
    kept = {n: s for n, s in kept.items() if np.isfinite(s).all()}
    left_out = tuple(sorted(set(scores) - set(kept)))
    if not kept:
        return None
    sign = 1.0 if maximize else -1.0  # goodness = sign * mean: higher is better either way
    order = sorted(kept, key=lambda n: (-sign * float(kept[n].mean()), n))
    best = order[0]
    best_se = float(kept[best].std(ddof=1)) / math.sqrt(n_scores)
    threshold = float(kept[best].mean()) - sign * best_se
    rows = []
    for rank, n in enumerate(order, start=1):
        s = kept[n]
        test = (
            PairedTest(0.0, 0.0, 0.0, math.nan, math.nan)
            if n == best
            else corrected_ttest((s - kept[best]).tolist(), ratio)
        )
        rows.append(
            {
                "rank": rank,
                "trial": n,
                "mean": float(s.mean()),
                "std": float(s.std(ddof=1)),
                "n_params": n_params.get(n),
                **test._asdict(),
                "tied": n == best or test.p >= alpha,
                "within_1se": sign * float(s.mean()) >= sign * threshold,
            }
        )
    table = pd.DataFrame(rows, columns=_COLUMNS[:-1])
    table["n_params"] = table["n_params"].astype("Int64")
    table["pareto"] = _pareto(table, sign)
    candidates = table[table["within_1se"] & table["n_params"].notna()]
    simplest = best if candidates.empty else int(candidates.sort_values(["n_params", "rank"]).iloc[0]["trial"])
    return Choice(table, best, simplest, best_se, threshold, folds, ratio, alpha, left_out, repeats)


def _pareto(table: pd.DataFrame, sign: float) -> list[bool]:
    # Fewest parameters first (the better mean first among equals): a trial is on the front when
    # it beats every trial with no more parameters than it has.
    known = table[table["n_params"].notna()]
    ordered = known.assign(_good=sign * known["mean"]).sort_values(["n_params", "_good"], ascending=[True, False])
    front, record = set(), -math.inf
    for trial, good in zip(ordered["trial"], ordered["_good"], strict=True):
        if good > record:
            front.add(int(trial))
            record = good
    return [int(n) in front for n in table["trial"]]


def fold_scores(trials: list[FrozenTrial], metric: str) -> tuple[dict[int, list[float]], dict[int, int | None]]:
    """Each trial's score of ``metric`` on every fold, and its parameter count, by trial number."""
    scores = {t.number: [fold.get(metric, math.nan) for fold in t.user_attrs.get(TRIAL_FOLDS, [])] for t in trials}
    return scores, {t.number: t.user_attrs.get(TRIAL_PARAMS_COUNT) for t in trials}
