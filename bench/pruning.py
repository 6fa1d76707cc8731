"""What pruning saves and what it costs: one study with the median pruner, the same study without.

``nox -s bench -- --pruning`` runs it after the speed bench: ``hpsearch study --trials 50 --folds 5``
on mnist-5k with ``--pruner median``, then with ``--pruner none``; same seed, each in its own
temporary SQLite storage, one after the other, through the CLI. Writes the wall time and best CV
accuracy of each, and their ratios, to bench/pruning.json. ``--trials 3`` checks it in a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import optuna
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="complete trials of each study (default 50)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    console = Console(width=120)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hpsearch-pruning-") as folder:
        runs = {}
        for pruner in PRUNERS:
            console.print(f"study with --pruner {pruner}: {args.trials} trials, {args.folds} folds, mnist-5k")
            runs[pruner] = run_study(pruner, args.trials, args.folds, args.seed, Path(folder))
    median, none = runs["median"], runs["none"]
    results = {
        "settings": vars(args) | {"dataset": "mnist-5k"},
        "runs": {pruner: asdict(run) for pruner, run in runs.items()},
        "seconds_none_over_median": none.seconds / median.seconds,
        # the target: at most half the wall time for at most 0.3 points less best CV accuracy
        "best_accuracy_points_lost": 100 * (none.best_accuracy - median.best_accuracy),
    }
    table = Table(title=f"{args.trials}-trial study on mnist-5k, {args.folds} folds, seed {args.seed}")
    for column in ("pruner", "wall s", "best CV accuracy", "trials"):
        table.add_column(column)
    for run in runs.values():
        states = ", ".join(f"{n} {state.lower()}" for state, n in run.trial_states.items())
        table.add_row(run.label, f"{run.seconds:.1f}", f"{run.best_accuracy:.4f}", states)
    console.print(table)
    console.print(
        f"without pruning / with median pruning: {results['seconds_none_over_median']:.2f}x the wall time; "
        f"best CV accuracy {results['best_accuracy_points_lost']:+.2f} points lost to pruning "
        "(target: at most 0.5x the time for at most 0.3 points)"
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
