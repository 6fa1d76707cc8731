"""Complete trials per hour on mnist-5k: one worker against ``--jobs 2`` (one torch thread each).

``nox -s bench -- --workers`` runs it after the speed bench: ``hpsearch study --trials N
--folds 5 --pruner none`` on mnist-5k, alternately with 1 worker and with ``--jobs 2``, each
repeat in a fresh SQLite file, so that the machine's noise hits both alike. Writes the medians
and their ratio to bench/workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cli_study import StudyRun, timed_study

RESULTS = Path(__file__).with_name("workers.json")
JOBS = (1, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="complete trials of each study (default 10)")
    parser.add_argument("--repeats", type=int, default=2, help="studies per number of workers (default 2)")
    args = parser.parse_args(argv)
    console = Console(width=120)
    console.print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    runs: dict[int, list[StudyRun]] = {jobs: [] for jobs in JOBS}
    with tempfile.TemporaryDirectory(prefix="hpsearch-workers-") as folder:
        for r in range(args.repeats):
            for jobs in JOBS:
                console.print(f"round {r + 1}/{args.repeats}: --jobs {jobs}, {args.trials} trials")
                options = ["--dataset", "mnist-5k", "--trials", str(args.trials), "--pruner", "none"]
                options += ["--jobs", str(jobs)]
                db = Path(folder) / f"jobs{jobs}-{r}.db"
                runs[jobs].append(timed_study(db, "workers-bench", options, label=f"--jobs {jobs}"))
    per_hour = {jobs: statistics.median(args.trials * 3600 / run.seconds for run in rs) for jobs, rs in runs.items()}
    results = {
        "settings": vars(args) | {"dataset": "mnist-5k", "folds": 5, "cores": os.cpu_count()},
        "runs": {f"jobs{jobs}": [asdict(run) for run in rs] for jobs, rs in runs.items()},
        "complete_trials_per_hour": {f"jobs{jobs}": v for jobs, v in per_hour.items()},
        "jobs2_over_jobs1": per_hour[2] / per_hour[1],
        "load_average_end": os.getloadavg(),
    }
    table = Table(title=f"{args.trials}-trial studies on mnist-5k, 5 folds, no pruning (median of {args.repeats})")
    for column in ("workers", "wall s (each repeat)", "complete trials per hour"):
        table.add_column(column)
    for jobs, rs in runs.items():
        table.add_row(f"--jobs {jobs}", ", ".join(f"{run.seconds:.1f}" for run in rs), f"{per_hour[jobs]:.0f}")
    console.print(table)
    console.print(f"--jobs 2 / 1 worker: {results['jobs2_over_jobs1']:.2f}x the complete trials per hour")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
