"""What pruning saves and what it costs: one study with the median pruner, the same study without.

``nox -s bench -- --pruning`` runs it after the speed bench: ``hpsearch study --trials 50 --folds 5``
on mnist-5k with ``--pruner median``, then with ``--pruner none``; same seed, each in its own
temporary SQLite storage, one after the other, through the CLI. hpsearch's ``--trials`` counts
complete trials, so the pruned study runs more trials in all; each study is also shown as its
first 50 trials, pruned ones included, which is what Optuna's ``n_trials`` counts. Writes the
time and best CV accuracy of each, and their ratios, to bench/pruning.json. ``--trials 3`` checks
it in a minute; ``--from DIR`` reads DIR/median.db and DIR/none.db instead of running.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from bench.cli_study import StudyRun, timed_study

RESULTS = Path(__file__).with_name("pruning.json")
PRUNERS = ("median", "none")
STUDY = "pruning-bench"


def run_study(pruner: str, trials: int, folds: int, seed: int, folder: Path) -> StudyRun:
    """Run one mnist-5k study with ``--pruner pruner`` through the CLI in a fresh SQLite file."""
    options = ["--dataset", "mnist-5k", "--trials", str(trials), "--folds", str(folds), "--pruner", pruner]
    return timed_study(folder / f"{pruner}.db", STUDY, [*options, "--seed", str(seed)], label=pruner)


def views(db: Path, n: int) -> dict[str, dict[str, Any]]:
    """The study in ``db`` seen two ways: until its n-th complete trial (what ``--trials n`` runs),
    and its first n trials, pruned ones included (what Optuna's ``optimize(n_trials=n)`` runs).

    Each view: seconds from the first trial's start to the view's last trial's end, the best CV
    accuracy among its complete trials, and its trials by state.
    """
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    ended = sorted((t for t in study.trials if t.datetime_complete is not None), key=lambda t: t.datetime_complete)
    complete = [t for t in ended if t.state == TrialState.COMPLETE]
    last_complete = complete[min(n, len(complete)) - 1].datetime_complete
    start = min(t.datetime_start for t in study.trials if t.datetime_start is not None)

    def view(trials: list[FrozenTrial]) -> dict[str, Any]:
        values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        return {
            "seconds": (max(t.datetime_complete for t in trials) - start).total_seconds(),
            "best_accuracy": max(values),
            "trial_states": dict(Counter(t.state.name for t in trials)),
        }

    first = sorted(ended, key=lambda t: t.number)[:n]
    return {
        f"until {n} complete": view([t for t in ended if t.datetime_complete <= last_complete]),
        f"first {n} trials": view(first),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="complete trials of each study (default 50)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from", dest="done", type=Path, help="a folder with median.db and none.db: no new runs")
    args = parser.parse_args(argv)
    console = Console(width=120)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: dict[str, StudyRun] = {}
    with tempfile.TemporaryDirectory(prefix="hpsearch-pruning-") as tmp:
        folder = args.done or Path(tmp)
        for pruner in PRUNERS if args.done is None else ():
            console.print(f"study with --pruner {pruner}: {args.trials} trials, {args.folds} folds, mnist-5k")
            runs[pruner] = run_study(pruner, args.trials, args.folds, args.seed, folder)
        seen = {pruner: views(folder / f"{pruner}.db", args.trials) for pruner in PRUNERS}
    results: dict[str, Any] = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()} | {"dataset": "mnist-5k"},
        "cli_runs": {pruner: asdict(run) for pruner, run in runs.items()},
        "views": seen,
    }
    table = Table(title=f"{args.trials}-trial studies on mnist-5k, {args.folds} folds, seed {args.seed}")
    columns = ("pruner", "counted", "trial time s", "best CV accuracy", "trials", "none / this, time", "points lost")
    for column in columns:
        table.add_column(column)
    for name in seen["median"]:
        none = seen["none"][name]
        for pruner in PRUNERS:
            v = seen[pruner][name]
            # the target: at most half the time for at most 0.3 points less best CV accuracy
            v["none_over_this_seconds"] = none["seconds"] / v["seconds"]
            v["points_lost"] = 100 * (none["best_accuracy"] - v["best_accuracy"])
            states = ", ".join(f"{n} {state.lower()}" for state, n in v["trial_states"].items())
            table.add_row(
                pruner, name, f"{v['seconds']:.0f}", f"{v['best_accuracy']:.4f}", states,
                f"{v['none_over_this_seconds']:.2f}x", f"{v['points_lost']:+.2f}",
            )  # fmt: skip
    console.print(table)
    for run in runs.values():
        console.print(f"{run.command}: {run.seconds:.0f} s wall")
    console.print("target: median pruning in at most half the time (none / this >= 2x), at most 0.3 points lost")
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
