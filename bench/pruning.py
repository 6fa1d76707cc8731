"""What pruning saves and what it costs: one study with the median pruner, the same study without.

``nox -s bench -- --pruning`` runs it after the speed bench: ``hpsearch study --trials 50 --folds 5``
on mnist-5k with ``--pruner median``, then with ``--pruner none``; same seed, each in its own
temporary SQLite storage, one after the other, through the CLI. ``--trials`` counts finished
trials, pruned ones included, as Optuna's ``n_trials`` does. Writes the time and best CV
accuracy of each, and their ratios, to bench/pruning.json. ``--trials 3`` checks
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
from optuna.trial import TrialState
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


def first_trials(db: Path, n: int) -> dict[str, Any]:
    """The first ``n`` trials of the study in ``db``, pruned ones included: seconds from the first
    trial's start to the last one's end (the CLI's start-up left out), the best CV accuracy among
    the complete ones, and the trials by state."""
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    trials = sorted((t for t in study.trials if t.datetime_complete is not None), key=lambda t: t.number)[:n]
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return {
        "seconds": (end - start).total_seconds(),
        "best_accuracy": max(values),
        "trial_states": dict(Counter(t.state.name for t in trials)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="trials of each study (default 50)")
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
        seen = {pruner: first_trials(folder / f"{pruner}.db", args.trials) for pruner in PRUNERS}
    results: dict[str, Any] = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()} | {"dataset": "mnist-5k"},
        "cli_runs": {pruner: asdict(run) for pruner, run in runs.items()},
        "studies": seen,
        # the target: at most half the time for at most 0.3 points less best CV accuracy
        "none_over_median_seconds": seen["none"]["seconds"] / seen["median"]["seconds"],
        "points_lost": 100 * (seen["none"]["best_accuracy"] - seen["median"]["best_accuracy"]),
    }
    table = Table(title=f"{args.trials}-trial studies on mnist-5k, {args.folds} folds, seed {args.seed}")
    for column in ("pruner", "trial time s", "CLI wall s", "best CV accuracy", "trials"):
        table.add_column(column)
    for pruner, v in seen.items():
        states = ", ".join(f"{n} {state.lower()}" for state, n in v["trial_states"].items())
        wall = f"{runs[pruner].seconds:.0f}" if pruner in runs else "-"
        table.add_row(pruner, f"{v['seconds']:.0f}", wall, f"{v['best_accuracy']:.4f}", states)
    console.print(table)
    console.print(
        f"no pruning / median pruning: {results['none_over_median_seconds']:.2f}x the time (target >= 2x); "
        f"best CV accuracy {results['points_lost']:+.2f} points lost to pruning (target <= 0.3)"
    )
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
