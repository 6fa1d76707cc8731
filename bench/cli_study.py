"""One ``hpsearch study`` run through the CLI, timed: what the pruning and workers benches compare."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna


@dataclass(frozen=True, kw_only=True)
class StudyRun:
    label: str
    seconds: float  # wall time of the CLI run, start-up included
    best_accuracy: float  # best CV mean accuracy of the study's complete trials
    trial_states: dict[str, int]  # COMPLETE / PRUNED / ... -> count
    command: str


def timed_study(db: Path, study_name: str, options: list[str], *, label: str, module: str = "hpsearch") -> StudyRun:
    """Run ``hpsearch study OPTIONS`` (``python -m MODULE study OPTIONS``) on a fresh SQLite file ``db``;
    its wall time, best value, trial states."""
    storage = f"sqlite:///{db}"
    command = [sys.executable, "-m", module, "study", *options, "--storage", storage]
    command += ["--study-name", study_name, "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=study_name, storage=storage)
    return StudyRun(
        label=label,
        seconds=seconds,
        best_accuracy=study.best_value,
        trial_states=dict(Counter(t.state.name for t in study.trials)),
        command=("hpsearch " if module == "hpsearch" else f"python -m {module} ") + " ".join(command[3:]),
    )
