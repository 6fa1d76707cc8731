"""What pruning saves and what it costs: one study with the median pruner, the same study without.

``nox -s bench -- --pruning`` runs it after the speed bench: ``hpsearch study --trials 50 --folds 5``
on mnist-5k with ``--pruner median``, then with ``--pruner none``; same seed, each in its own
temporary SQLite storage, one after the other, through the CLI. Writes the wall time and best CV
accuracy of each, and their ratios, to bench/pruning.json. ``--trials 3`` checks it in a minute.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("pruning.json")
PRUNERS = ("median", "none")
STUDY = "pruning-bench"


@dataclass(frozen=True, kw_only=True)
class StudyRun:
    pruner: str
    seconds: float  # wall time of the CLI run, start-up included
    best_accuracy: float  # best CV mean accuracy of the study's complete trials
    trial_states: dict[str, int]  # COMPLETE / PRUNED / ... -> count
    command: str


def run_study(pruner: str, trials: int, folds: int, seed: int, folder: Path) -> StudyRun:
    """Run one study through the CLI in a fresh SQLite file; its wall time, best value and trial states."""
    storage = f"sqlite:///{folder / f'{pruner}.db'}"
    command = [sys.executable, "-m", "hpsearch", "study", "--dataset", "mnist-5k", "--trials", str(trials)]
    command += ["--folds", str(folds), "--pruner", pruner, "--seed", str(seed), "--storage", storage]
    command += ["--study-name", STUDY, "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=STUDY, storage=storage)
    return StudyRun(
        pruner=pruner,
        seconds=seconds,
        best_accuracy=study.best_value,
        trial_states=dict(Counter(t.state.name for t in study.trials)),
        command=" ".join(command[1:]),
    )


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
        "best_accuracy_median_over_none": median.best_accuracy / none.best_accuracy,
    }
    table = Table(title=f"{args.trials}-trial study on mnist-5k, {args.folds} folds, seed {args.seed}")
    for column in ("pruner", "wall s", "best CV accuracy", "trials"):
        table.add_column(column)
    for run in runs.values():
        states = ", ".join(f"{n} {state.lower()}" for state, n in run.trial_states.items())
        table.add_row(run.pruner, f"{run.seconds:.1f}", f"{run.best_accuracy:.4f}", states)
    console.print(table)
    console.print(
        f"without pruning / with median pruning: {results['seconds_none_over_median']:.2f}x the wall time; "
        f"best accuracy with / without: {results['best_accuracy_median_over_none']:.4f}"
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
