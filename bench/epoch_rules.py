"""Replay candidate epoch rules on recorded learning curves: what each saves, and what it would have cut.

``python -m bench.epoch_rules bench/curves-fashion-mnist-hour.json`` reads the curves that
``bench/curves.py`` recorded (each sampled configuration's first wave, every epoch) and, for each
rule, replays the trials in their order through a real Optuna study in memory with the rule's
pruner: each epoch's mean over the wave's folds is reported, and the pruner decides as it would
in a study (``hpsearch.search.pruning.WavePruner``, the pruner ``--pruner median`` and the race
use). It prints, per rule: the share of the training time it saves (each stopped trial's
untrained epochs, at that trial's median seconds per epoch), how many trials it stops, and which
of the trials that came within 0.3 points of the best final score it would have stopped. A rule
that stops a trial which would have won is worse than one that saves less. Writes
``bench/epoch_rules.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from hpsearch.search.pruning import WavePruner

WITHIN = 0.003  # "within 0.3 points of the best"
Rule = Callable[[int], optuna.pruners.BasePruner]  # epochs -> pruner


def rules(shipped_startup: int, shipped_warmup: int) -> dict[str, Rule]:
    """The candidates: the shipped rule, later warm-ups (as a share of the schedule), a lower percentile."""

    def wave(startup: int, warmup: Callable[[int], int], percentile: float = 50.0) -> Rule:
        return lambda e: WavePruner(epochs=e, startup_trials=startup, warmup_epochs=warmup(e), percentile=percentile)

    return {
        f"median, {shipped_startup} start-up, warm-up {shipped_warmup} (shipped)": wave(
            shipped_startup, lambda e: shipped_warmup
        ),
        "median, 2 start-up, warm-up E/3": wave(2, lambda e: e // 3),
        "median, 2 start-up, warm-up E/2": wave(2, lambda e: e // 2),
        "median, 2 start-up, warm-up 2E/3": wave(2, lambda e: 2 * e // 3),
        "median, 4 start-up, warm-up E/3": wave(4, lambda e: e // 3),
        "25th percentile, 2 start-up, warm-up E/3": wave(2, lambda e: e // 3, 25.0),
        "25th percentile, 2 start-up, warm-up E/2": wave(2, lambda e: e // 2, 25.0),
        "25th percentile, 4 start-up, warm-up E/3": wave(4, lambda e: e // 3, 25.0),
        "none": lambda e: optuna.pruners.NopPruner(),
    }


def replay(trials: list[dict[str, Any]], make: Rule) -> dict[str, Any]:
    """Run the recorded trials through a study whose pruner is ``make(epochs)``; what it stopped, when."""
    epochs = len(trials[0]["epochs"])
    study = optuna.create_study(direction="maximize", pruner=make(epochs))
    stopped: dict[int, int] = {}  # trial -> epochs it ran
    for t in trials:
        trial = study.ask()
        curve = [sum(f["accuracy"] for f in e["folds"]) / len(e["folds"]) for e in t["epochs"]]
        for step, value in enumerate(curve):
            trial.report(value, step)
            if step < len(curve) - 1 and trial.should_prune():
                stopped[t["number"]] = step + 1
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
    final = {t["number"]: sum(f["accuracy"] for f in t["epochs"][-1]["folds"]) / len(t["epochs"][-1]["folds"])
             for t in trials}  # fmt: skip
    best = max(final.values())
    near = {n for n, v in final.items() if v >= best - WITHIN}
    cost = {t["number"]: statistics.median(e["seconds"] for e in t["epochs"]) for t in trials}
    total = sum(cost[n] * epochs for n in final)
    saved = sum(cost[n] * (epochs - ran) for n, ran in stopped.items())
    return {
        "stopped": {str(n): ran for n, ran in sorted(stopped.items())},
        "saved_share": saved / total,
        "near_best": sorted(near),
        "near_best_stopped": sorted(near & set(stopped)),
        "best_stopped": max(final, key=lambda n: final[n]) in stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", type=Path, nargs="+", help="bench/curves-*.json files")
    parser.add_argument("--startup", type=int, default=2, help="the shipped rule's start-up trials")
    parser.add_argument("--warmup", type=int, nargs="+", default=[5], help="the shipped warm-up, per curves file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    console, results = Console(width=140), {}
    for path, warmup in zip(args.curves, args.warmup * len(args.curves), strict=False):
        trials = json.loads(path.read_text())["trials"]
        table = Table(title=f"{path.name}: {len(trials)} trials, {len(trials[0]['epochs'])} epochs, first wave")
        for column in ("rule", "saves", "stopped", "within 0.3 pt of the best, stopped", "best stopped"):
            table.add_column(column, justify="left" if column == "rule" else "right")
        results[path.name] = {}
        for name, make in rules(args.startup, warmup).items():
            r = results[path.name][name] = replay(trials, make)
            near = f"{len(r['near_best_stopped'])} of {len(r['near_best'])} {r['near_best_stopped'] or ''}"
            table.add_row(
                name, f"{r['saved_share']:.0%}", str(len(r["stopped"])), near, "yes" if r["best_stopped"] else "no"
            )
        console.print(table)
    Path(__file__).with_name("epoch_rules.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
