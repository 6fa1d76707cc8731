"""Render the section "Is the best really the best?": its sentences, its JSON and its two pictures.

``top_trials.png`` shows the compared trials' CV means; each bar is the confidence interval of
the trial's difference from the best (corrected resampled t-test) laid around the trial's mean,
so a bar that reaches the best's line marks a trial the folds cannot tell from the best.
``pareto.png`` shows the CV mean of every complete trial against its parameter count, with the
tied set, the Pareto front, the best and the simplest choice marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hpsearch.analysis.choose import Choice
from hpsearch.analysis.report import Report

_TIED, _APART, _BEST, _SIMPLEST = "tab:blue", "tab:gray", "tab:orange", "tab:green"


def choice_sentences(report: Report) -> list[str]:
    """What the comparison table means and what the one-SE rule chose, in words."""
    choice, table = report.choice, report.comparison
    if choice is None or table is None:
        return []
    k, n, metric, total = choice.folds, choice.scores, report.metric, len(choice.table)
    worse = "negative" if report.direction == "maximize" else "positive"
    level = f"{1 - choice.alpha:.0%}"
    if choice.repeats == 1:
        folds, test, count = f"{k} folds", "the corrected resampled t-test (Nadeau and Bengio, 2003)", "1/K"
    else:
        folds = f"{n} folds ({choice.repeats} repeats of {k}-fold)"
        test, count = "Bouckaert and Frank's corrected repeated k-fold cv test (2004)", "1/(R x K)"
    sentences = [
        f"Every trial is scored on the same {folds}, so each is compared with the best (trial {choice.best}) "
        f"fold by fold: diff_vs_best is its CV mean {metric} minus the best's ({worse} is worse), with its {level} "
        f"confidence interval, t and two-sided p from {test}: "
        f"the variance of the {n} fold differences times {count} + n_val/n_train = 1/{n} + 1/{k - 1}, "
        f"{n - 1} degrees of freedom.",
        f"Tied: p ≥ {choice.alpha:g}, the interval holds 0, so these folds cannot tell the trial from the best; "
        + (
            f"{int(choice.table['tied'].sum()) - 1} of the other {total - 1} trials are. Each comparison stands "
            "alone, with no correction for making several."
            if total > 1
            else "there is no other trial to compare."
        ),
        _one_se(choice, metric, report.direction),
    ]
    if len(table) < total:
        top = int((table["rank"].to_numpy() == np.arange(1, len(table) + 1)).sum())  # ranks 1..top, then the simplest
        extra = "" if top == len(table) else f", and the simplest, ranked {int(table['rank'].iloc[-1])}"
        sentences.append(f"The table shows the top {top} of the {total} trials{extra}; pareto.png shows them all.")
    if choice.left_out:
        numbers = ", ".join(str(n) for n in choice.left_out)
        sentences.append(f"Left out: complete trials {numbers}, which lack a score on each of the {n} folds.")
    return sentences


def choice_json(choice: Choice | None) -> dict[str, Any] | None:
    """The choice in a few numbers: best, simplest, the tied set, the one-SE bound, the test used."""
    if choice is None:
        return None
    table = choice.table
    return {
        "best": choice.best,
        "simplest": choice.simplest,
        "tied": [int(n) for n in table.loc[table["tied"], "trial"]],
        "within_1se": [int(n) for n in table.loc[table["within_1se"], "trial"]],
        "pareto_front": [int(n) for n in table.loc[table["pareto"], "trial"]],
        "best_se": choice.best_se,
        "threshold": choice.threshold,
        "folds": choice.folds,
        "repeats": choice.repeats,
        "alpha": choice.alpha,
        "test": (
            f"corrected resampled t-test, variance x (1/K + {choice.ratio:.6g}), K-1 degrees of freedom"
            if choice.repeats == 1
            else f"corrected repeated k-fold cv test, variance x (1/(R K) + {choice.ratio:.6g}), R K - 1 degrees "
            "of freedom"
        ),
        "left_out": list(choice.left_out),
    }


def draw_choice(report: Report, folder: Path) -> list[tuple[str, str]]:
    """Draw ``top_trials.png`` and ``pareto.png`` into ``folder``; return (file name, caption) pairs."""
    choice, table = report.choice, report.comparison
    if choice is None or table is None:
        return []
    metric = report.metric
    _top_trials(table, choice, metric, report.direction).savefig(folder / "top_trials.png", dpi=100)
    pictures = [
        (
            "top_trials.png",
            f"CV mean {metric} of the compared trials; bars: {1 - choice.alpha:.0%} interval of the difference from "
            "the best (corrected t-test) around each mean: a bar reaching the best's line is tied with it",
        )
    ]
    if choice.table["n_params"].notna().any():
        _pareto(choice, metric, report.direction).savefig(folder / "pareto.png", dpi=100)
        caption = f"CV mean {metric} against parameters: the tied set, the Pareto front, the best and the simplest"
        pictures.append(("pareto.png", caption))
    return pictures


def _one_se(choice: Choice, metric: str, direction: str) -> str:
    table = choice.table
    best_mean = float(table.loc[table["trial"] == choice.best, "mean"].iloc[0])
    sign, side = ("minus", "at or above") if direction == "maximize" else ("plus", "at or below")
    n_within = int(table["within_1se"].sum())
    head = (
        f"One-standard-error rule: the best's CV mean {metric} {best_mean:.4f} {sign} its standard error "
        f"{choice.best_se:.4f} (fold std / √{choice.scores}) is {choice.threshold:.4f}; of the {n_within} "
        f"trial{'s' * (n_within != 1)} {side} it, "
    )
    size = table.loc[table["trial"] == choice.simplest, "n_params"].iloc[0]
    count = "an unknown number of" if pd.isna(size) else f"{int(size):,}"
    who = "the best itself" if choice.simplest == choice.best else f"trial {choice.simplest}"
    return head + f"{who} has the fewest parameters ({count}): hpsearch final-test simplest retrains and tests it."


def _top_trials(table: pd.DataFrame, choice: Choice, metric: str, direction: str) -> Figure:
    fig = Figure(figsize=(max(6.0, 0.55 * len(table) + 2), 4), layout="constrained")  # not pyplot's: nothing to close
    ax = fig.subplots()
    x = np.arange(len(table))
    mean = table[f"{metric}_mean"].to_numpy(dtype=float)
    diff = table["diff_vs_best"].to_numpy(dtype=float)
    low = diff - table["ci_low"].to_numpy(dtype=float)
    high = table["ci_high"].to_numpy(dtype=float) - diff
    best_mean = mean[table["trial"].to_numpy() == choice.best][0]
    ax.axhline(best_mean, color=_BEST, linestyle="--", linewidth=1, label=f"best (trial {choice.best})")
    bound = f"one-SE bound: the best {'−' if direction == 'maximize' else '+'} its standard error"
    ax.axhline(choice.threshold, color=_SIMPLEST, linestyle=":", linewidth=1, label=bound)
    for tied, colour, label in ((True, _TIED, "tied with the best"), (False, _APART, "differs from the best")):
        mask = table["tied"].to_numpy(dtype=bool) == tied
        if mask.any():
            yerr = np.vstack([low[mask], high[mask]])
            ax.errorbar(x[mask], mean[mask], yerr=yerr, fmt="o", capsize=3, color=colour, label=label)
    simplest = table["trial"].to_numpy() == choice.simplest
    ax.scatter(x[simplest], mean[simplest], s=220, marker="*", color=_SIMPLEST, zorder=3, label="simplest (1-SE)")
    ax.set_xticks(x, [f"#{n}" for n in table["trial"]])
    ax.set(xlabel="trial, best first", ylabel=f"CV mean {metric}", title="Is the best really the best?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _pareto(choice: Choice, metric: str, direction: str) -> Figure:
    table = choice.table[choice.table["n_params"].notna()]
    params, mean = table["n_params"].to_numpy(dtype=float), table["mean"].to_numpy(dtype=float)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.subplots()
    tied = table["tied"].to_numpy(dtype=bool)
    ax.scatter(params[~tied], mean[~tied], color=_APART, alpha=0.7, label="differs from the best")
    ax.scatter(params[tied], mean[tied], color=_TIED, label="tied with the best")
    front = table[table["pareto"]].sort_values("n_params")
    ax.step(front["n_params"].astype(float), front["mean"], where="post", color=_TIED, alpha=0.5, label="Pareto front")
    for trial, marker, size, colour, label in (
        (choice.best, "D", 90, _BEST, "best"),
        (choice.simplest, "*", 260, _SIMPLEST, "simplest (1-SE)"),
    ):
        row = table["trial"].to_numpy() == trial
        if row.any():
            ax.scatter(
                params[row], mean[row], marker=marker, s=size, color=colour, zorder=3, label=f"{label}: #{trial}"
            )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    better = "higher" if direction == "maximize" else "lower"
    ax.set(xlabel="parameters", ylabel=f"CV mean {metric} ({better} is better)", title=f"{metric} against size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig
