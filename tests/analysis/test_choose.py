"""The corrected resampled t-test, the tie marking and the one-SE choice, on hand-made fold scores."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from scipy import stats

from hpsearch.analysis.choose import Choice, choose, corrected_ttest
from hpsearch.config import Definition, with_overrides
from hpsearch.store.schema import (
    STUDY_DATA,
    STUDY_DEFINITION,
    TRIAL_FOLDS,
    TRIAL_MACS,
    TRIAL_MEAN,
    TRIAL_PARAMS_COUNT,
    TRIAL_STD,
)

K = 5
# Accuracy on each of K=5 folds (the same split for every trial), with each trial's parameter count.
# 3 is the best; 0 and 2 are tied with it and within one SE (0 is smaller); 4 is tied only because
# its folds vary wildly, and is not within one SE; 1 is clearly worse though the smallest; 6 has no
# stored size; 5 lacks a fold.
SCORES: dict[int, list[float]] = {
    0: [0.91, 0.90, 0.90, 0.92, 0.90],
    1: [0.85, 0.87, 0.86, 0.88, 0.845],
    2: [0.905, 0.915, 0.905, 0.925, 0.89],
    3: [0.90, 0.92, 0.91, 0.93, 0.89],
    4: [0.80, 0.98, 0.85, 0.97, 0.88],
    5: [0.80, 0.81, 0.79, 0.80],
    6: [0.905, 0.905, 0.905, 0.905, 0.905],
}
N_PARAMS: dict[int, int | None] = {0: 2_000, 1: 500, 2: 50_000, 3: 10_000, 4: 1_000, 5: 800, 6: None}
BEST, SIMPLEST = 3, 0
TIED = {0, 2, 3, 4, 6}
WITHIN_1SE = {0, 2, 3, 6}
PARETO = {1, 4, 0, 3}


def _independent(diffs: list[float], k: int, ratio: float) -> tuple[float, float, float, float, float]:
    """mean, CI low and high, t and p computed by hand with scipy's t distribution."""
    mean = statistics.fmean(diffs)
    scale = math.sqrt((1 / k + ratio) * statistics.variance(diffs))
    t = mean / scale
    low, high = stats.t.interval(0.95, k - 1, loc=mean, scale=scale)
    return mean, low, high, t, 2 * stats.t.sf(abs(t), k - 1)


def _table(choice: Choice) -> dict[int, dict[str, Any]]:
    return {int(row["trial"]): {str(k): v for k, v in row.items()} for row in choice.table.to_dict(orient="records")}


@pytest.mark.parametrize("other", [0, 1, 2, 4, 6])
def test_corrected_ttest_equals_the_formula_with_scipys_t(other: int) -> None:
    diffs = [a - b for a, b in zip(SCORES[other], SCORES[BEST], strict=True)]
    got = corrected_ttest(diffs, 1 / (K - 1))
    assert tuple(got) == pytest.approx(_independent(diffs, K, 1 / (K - 1)), rel=1e-12, abs=1e-15)


def test_without_the_correction_it_is_scipys_paired_ttest() -> None:
    plain = stats.ttest_rel(SCORES[0], SCORES[BEST])
    got = corrected_ttest([a - b for a, b in zip(SCORES[0], SCORES[BEST], strict=True)], 0.0)
    assert (got.t, got.p) == pytest.approx((plain.statistic, plain.pvalue), rel=1e-12)
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(plain.confidence_interval(0.95)), rel=1e-12)


def test_the_correction_widens_the_interval_and_raises_p() -> None:
    diffs = [a - b for a, b in zip(SCORES[1], SCORES[BEST], strict=True)]
    plain, corrected = corrected_ttest(diffs, 0.0), corrected_ttest(diffs, 1 / (K - 1))
    assert corrected.p > plain.p and corrected.ci_high - corrected.ci_low > plain.ci_high - plain.ci_low
    # 1/K + 1/(K-1) over 1/K: the standard error grows by sqrt(1 + K/(K-1))
    assert plain.t / corrected.t == pytest.approx(math.sqrt(1 + K / (K - 1)))


def test_differences_without_spread() -> None:
    same = corrected_ttest([0.0, 0.0, 0.0], 0.5)
    assert (same.diff, same.ci_low, same.ci_high, same.t, same.p) == (0.0, 0.0, 0.0, 0.0, 1.0)
    shifted = corrected_ttest([-0.25, -0.25, -0.25], 0.5)
    assert shifted.p == 0.0 and shifted.t == -math.inf and shifted.ci_low == shifted.ci_high == -0.25
    with pytest.raises(ValueError, match="two or more finite"):
        corrected_ttest([0.1], 0.5)


def test_ties_the_one_se_rule_and_the_pareto_front() -> None:
    choice = choose(SCORES, N_PARAMS, folds=K, maximize=True)
    assert choice is not None
    rows = _table(choice)
    assert (choice.best, choice.simplest, choice.left_out) == (BEST, SIMPLEST, (5,))
    assert list(choice.table["trial"]) == [3, 2, 0, 6, 4, 1]  # best first
    assert {n for n, r in rows.items() if r["tied"]} == TIED
    assert {n for n, r in rows.items() if r["within_1se"]} == WITHIN_1SE
    assert {n for n, r in rows.items() if r["pareto"]} == PARETO
    assert choice.best_se == pytest.approx(statistics.stdev(SCORES[BEST]) / math.sqrt(K))
    assert choice.threshold == pytest.approx(statistics.fmean(SCORES[BEST]) - choice.best_se)
    assert choice.ratio == pytest.approx(1 / (K - 1))
    for n, row in rows.items():
        if n != BEST:
            diffs = [a - b for a, b in zip(SCORES[n], SCORES[BEST], strict=True)]
            expected = _independent(diffs, K, 1 / (K - 1))
            assert [row[c] for c in ("diff", "ci_low", "ci_high", "t", "p")] == pytest.approx(expected, rel=1e-12)
            assert row["tied"] == (expected[4] >= 0.05)
    assert rows[BEST]["diff"] == 0 and math.isnan(rows[BEST]["p"])


def test_for_a_loss_lower_is_better_and_the_signs_turn() -> None:
    losses = {n: [1 - s for s in folds] for n, folds in SCORES.items()}
    accuracy = choose(SCORES, N_PARAMS, folds=K, maximize=True)
    loss = choose(losses, N_PARAMS, folds=K, maximize=False)
    assert accuracy is not None and loss is not None
    assert (loss.best, loss.simplest) == (BEST, SIMPLEST)
    assert loss.threshold == pytest.approx(1 - accuracy.threshold)
    a, b = accuracy.table.set_index("trial"), loss.table.set_index("trial")
    assert (a["tied"] == b["tied"]).all() and (a["within_1se"] == b["within_1se"]).all()
    assert (a["pareto"] == b["pareto"]).all()
    assert b["diff"].to_numpy() == pytest.approx(-a["diff"].to_numpy(), abs=1e-12)
    assert b["p"].drop(BEST).to_numpy() == pytest.approx(a["p"].drop(BEST).to_numpy())


def test_alpha_sets_the_tie_and_the_interval() -> None:
    strict = choose(SCORES, N_PARAMS, folds=K, maximize=True, alpha=0.5)
    assert strict is not None
    for row in _table(strict).values():
        if row["trial"] != BEST:
            assert row["tied"] == (row["ci_low"] <= 0 <= row["ci_high"]) == (row["p"] >= 0.5)


def test_the_simplest_is_the_best_when_no_smaller_trial_is_as_good() -> None:
    sizes = {**N_PARAMS, 0: 20_000, 6: 30_000}
    choice = choose(SCORES, sizes, folds=K, maximize=True)
    assert choice is not None and choice.simplest == BEST


def test_repeated_k_fold_uses_every_paired_score_with_the_repeated_correction() -> None:
    # two repeats of the 5 folds: the second repeat's scores are the first's, shifted a little per trial
    shift = {n: 0.004 * ((n % 3) - 1) for n in SCORES}
    repeated = {n: s + [v + shift[n] for v in s] for n, s in SCORES.items() if len(s) == K}
    repeated[5] = SCORES[5] + SCORES[5]  # 8 of 10 scores: left out
    choice = choose(repeated, N_PARAMS, folds=K, maximize=True, repeats=2)
    assert choice is not None and choice.scores == 2 * K and choice.left_out == (5,)
    assert choice.ratio == pytest.approx(1 / (K - 1))  # n_val / n_train of one fold, repeated or not
    rows = _table(choice)
    best = choice.best
    assert choice.best_se == pytest.approx(statistics.stdev(repeated[best]) / math.sqrt(2 * K))
    for n, row in rows.items():
        if n != best:
            diffs = [a - b for a, b in zip(repeated[n], repeated[best], strict=True)]
            # Bouckaert and Frank: (1/(R K) + 1/(K-1)) var(d), R K - 1 degrees of freedom
            expected = _independent(diffs, 2 * K, 1 / (K - 1))
            assert [row[c] for c in ("diff", "ci_low", "ci_high", "t", "p")] == pytest.approx(expected, rel=1e-12)
    once = choose(SCORES, N_PARAMS, folds=K, maximize=True)
    assert once is not None and once.repeats == 1 and once.scores == K
    assert choose(SCORES, N_PARAMS, folds=K, maximize=True, repeats=2) is None  # K scores are not R x K


def test_nothing_to_choose_without_k_finite_folds() -> None:
    assert choose({0: [0.9, 0.8], 1: [0.9, math.nan, 0.7]}, {0: 10, 1: 10}, folds=3, maximize=True) is None
    assert choose({}, {}, folds=3, maximize=True) is None


def make_study(db: Path, *, metric: str = "accuracy") -> optuna.Study:
    """An hpsearch study of the trials above, stored as ``hpsearch study`` stores them, plus a pruned one."""
    defn = with_overrides(Definition(), dataset="digits", folds=K, epochs=1, metric=metric)
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name="hand", direction=defn.direction)
    study.set_user_attr(STUDY_DEFINITION, defn.to_dict())
    study.set_user_attr(STUDY_DATA, {"name": "digits", "n_train": 1437, "n_test": 360, "n_classes": 10})
    distributions = {
        "depth": IntDistribution(1, 4),
        "width": IntDistribution(32, 1024, log=True),
        "optimizer": CategoricalDistribution(["sgd", "adam", "adagrad", "rmsprop"]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
    }
    for n, accuracy in SCORES.items():
        folds = [{"loss": 1 - a, "accuracy": a, "precision": a, "recall": a, "f1": a} for a in accuracy]
        mean = {k: statistics.fmean(f[k] for f in folds) for k in folds[0]}
        std = {k: statistics.stdev(f[k] for f in folds) for k in folds[0]}
        params = {
            "depth": 1 + n % 4,
            "width": 32 * 2 ** (n % 5),
            "optimizer": ["sgd", "adam"][n % 2],
            "lr": 10 ** -(1 + n % 3),
        }
        size = N_PARAMS[n]
        attrs = {TRIAL_FOLDS: folds, TRIAL_MEAN: mean, TRIAL_STD: std, TRIAL_PARAMS_COUNT: size}
        attrs[TRIAL_MACS] = None if size is None else 2 * size
        trial = optuna.trial.create_trial(
            value=mean[metric], params=params, distributions=distributions, user_attrs=attrs
        )
        study.add_trial(trial)
    pruned = optuna.trial.create_trial(
        state=TrialState.PRUNED, params=params, distributions=distributions, user_attrs={TRIAL_FOLDS: folds[:1]}
    )
    study.add_trial(pruned)
    return study
