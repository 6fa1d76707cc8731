"""Training speed side by side: this machine's GEMM limit, hpsearch, the tutorial loop, skorch.

``nox -s bench`` runs it (``-- --quick``: fewer rows and epochs, under 5 minutes). All loops
train the issue's MLP (784-512-512-10, Adam) on the same Fashion-MNIST rows, at batch 64 and
256; their repeats are interleaved (A B C A B C ...) so that the machine's noise hits all of
them alike, and the table shows medians. Writes bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench import loops
from hpsearch.config import CVConfig, DataConfig
from hpsearch.data import Dataset, load_training
from hpsearch.errors import DataError
from hpsearch.training import Split, make_splits

RESULTS = Path(__file__).with_name("results.json")
EPOCH_LOOPS = {  # key -> what the table calls it; times are seconds per epoch per model
    "gemm": "GEMM limit (fwd+bwd matrix products alone)",
    "gemm_threads": "GEMM limit, 2 models x 1 thread side by side",
    "tutorial": "tutorial loop (DataLoader, Sequential, Adam)",
    "fit": "hpsearch fit (one model)",
    "folds_stacked": "hpsearch fit_stacked (5 folds, one baddbmm)",
    "folds": "hpsearch fit_folds (5 folds, as in a trial)",
}
TRIAL_LOOPS = {"skorch": "skorch + cross_val_score(cv=5)", "hpsearch": "hpsearch cross_validate"}


Run = Callable[[], tuple[float, list[float] | None]]  # -> (seconds, per-fold accuracy of a trial or None)


@dataclass(frozen=True, kw_only=True)
class Settings:
    rows: int  # training rows of every loop (fewer if the data set has fewer)
    trial_epochs: int  # epochs of the 5-fold trials
    repeats: int  # interleaved repeats of every loop; the table shows their median
    batches: tuple[int, ...] = (64, 256)


FULL = Settings(rows=48_000, trial_epochs=3, repeats=3)  # the rows and skorch epochs
QUICK = Settings(rows=10_000, trial_epochs=2, repeats=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and epochs: under 5 minutes")
    parser.add_argument("--rows", type=int, help="training rows instead of 48,000 (10,000 with --quick)")
    args = parser.parse_args(argv)
    settings, console = QUICK if args.quick else FULL, Console(width=120)
    if args.rows:
        settings = replace(settings, rows=args.rows)
    load_start = os.getloadavg()
    console.print(f"load average at start: {_load(load_start)}")
    console.print(f"machine: {_cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} torch threads")  # fmt: skip
    data = _data(settings, console)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    splits = make_splits(data.y, CVConfig(folds=loops.FOLDS))
    runs = _plan(x, y, data, splits, settings)
    _warm_up(data)
    times: dict[str, list[float]] = {key: [] for key in runs}
    accuracy: dict[str, list[list[float]]] = {}  # trial -> per repeat, per fold
    for r in range(settings.repeats):
        console.print(f"round {r + 1}/{settings.repeats}: {len(runs)} loops")
        for key, run in runs.items():
            seconds, folds = run()
            times[key].append(seconds)
            if folds is not None:
                accuracy.setdefault(key, []).append(folds)
    load_end = os.getloadavg()
    results = _results(times, accuracy, settings, data, load_start, load_end)
    _print(results, console)
    console.print(f"load average at end: {_load(load_end)}")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


def _plan(x: torch.Tensor, y: torch.Tensor, data: Dataset, splits: list[Split], settings: Settings) -> dict[str, Run]:
    """Every measurement of one round, keyed ``loop@batch``, in the order they alternate."""
    runs: dict[str, Run] = {}
    for b in settings.batches:
        runs |= {
            f"gemm@{b}": lambda b=b: (loops.gemm_epoch(x, b), None),
            f"gemm_threads@{b}": lambda b=b: (loops.gemm_epoch(x, b, models=2), None),
            f"tutorial@{b}": lambda b=b: (loops.tutorial_epoch(x, y, b), None),
            f"fit@{b}": lambda b=b: (loops.fit_epoch(x, y, b), None),
            f"folds_stacked@{b}": lambda b=b: (loops.folds_epoch(x, y, b, stacked=True), None),
            f"folds@{b}": lambda b=b: (loops.folds_epoch(x, y, b, stacked=False), None),
        }
    for b in settings.batches:
        runs |= {
            f"skorch@{b}": lambda b=b: loops.skorch_trial(data, splits, b, settings.trial_epochs),
            f"hpsearch@{b}": lambda b=b: loops.hpsearch_trial(data, splits, b, settings.trial_epochs),
        }
    return runs


def _data(settings: Settings, console: Console) -> Dataset:
    """Fashion-MNIST's first ``settings.rows`` training rows; mnist-5k where it is missing."""
    try:
        data = load_training(DataConfig(dataset="fashion-mnist"))[0]
    except DataError as e:
        console.print(f"[yellow]note:[/] {e}; measuring on mnist-5k instead (4,000 training rows)")
        data = load_training(DataConfig(dataset="mnist-5k"))[0]
    rows = min(settings.rows, len(data.y))
    console.print(f"data: {data.name}, {rows:,} training rows")
    return loops.subset(data, rows)


def _warm_up(data: Dataset) -> None:
    """One small run of every loop first: thread pools, allocator and imports are then warm."""
    small = loops.subset(data, 1000)
    x, y = torch.from_numpy(small.x), torch.from_numpy(small.y)
    splits = make_splits(small.y, CVConfig(folds=loops.FOLDS))
    loops.gemm_epoch(x, 64)
    loops.gemm_epoch(x, 64, models=2)
    loops.tutorial_epoch(x, y, 64)
    loops.fit_epoch(x, y, 64)
    loops.folds_epoch(x, y, 64, stacked=True)
    loops.folds_epoch(x, y, 64, stacked=False)
    loops.skorch_trial(small, splits, 64, 1)
    loops.hpsearch_trial(small, splits, 64, 1)


def _results(
    times: dict[str, list[float]],
    accuracy: dict[str, list[list[float]]],
    settings: Settings,
    data: Dataset,
    load_start: tuple[float, float, float],
    load_end: tuple[float, float, float],
) -> dict[str, Any]:
    """Medians, ratios and the issue's targets, with every raw time and fold accuracy (JSON-ready).

    Each target also gets its ceiling: the ratio hpsearch would reach if it ran at this
    machine's GEMM limit (the faster of the two), which no training loop can beat by much.
    """
    med = {key: statistics.median(ts) for key, ts in times.items()}
    ratios, targets = {}, []
    for b in settings.batches:
        limit = min(med[f"gemm@{b}"], med[f"gemm_threads@{b}"])
        trial_limit = limit * (1 - 1 / loops.FOLDS) * loops.FOLDS * settings.trial_epochs  # per-model rows: 4/5
        for loop in EPOCH_LOOPS:
            ratios[f"{loop}@{b} / gemm@{b}"] = med[f"{loop}@{b}"] / med[f"gemm@{b}"]
        ratios[f"tutorial@{b} / folds@{b}"] = med[f"tutorial@{b}"] / med[f"folds@{b}"]
        ratios[f"tutorial@{b} / fit@{b}"] = med[f"tutorial@{b}"] / med[f"fit@{b}"]
        ratios[f"skorch@{b} / hpsearch@{b}"] = med[f"skorch@{b}"] / med[f"hpsearch@{b}"]
        bound = 1.3 if b == 64 else 1.2
        targets.append(
            _target(f"fit_folds within {bound}x of the GEMM limit at batch {b}", ratios[f"folds@{b} / gemm@{b}"],
                    bound, at_most=True, ceiling=limit / med[f"gemm@{b}"])
        )  # fmt: skip
        targets.append(
            _target(f"5-fold trial at batch {b}: skorch / hpsearch", ratios[f"skorch@{b} / hpsearch@{b}"], 3,
                    at_most=False, ceiling=med[f"skorch@{b}"] / trial_limit)
        )  # fmt: skip
    targets.append(
        _target("tutorial / fit_folds at batch 64", ratios["tutorial@64 / folds@64"], 5, at_most=False,
                ceiling=med["tutorial@64"] / min(med["gemm@64"], med["gemm_threads@64"]))
    )  # fmt: skip
    mean_accuracy = {key: [float(np.mean(folds)) for folds in runs] for key, runs in accuracy.items()}
    return {
        "machine": {
            "cpu": _cpu_name(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "settings": asdict(settings) | {"data": data.name, "rows": len(data.y), "fit_folds_epochs": loops.FOLDS_EPOCHS},
        "load_average": {"start": load_start, "end": load_end},
        "seconds": times,
        "median_seconds": med,
        "fold_accuracy": accuracy,
        "median_accuracy": {key: statistics.median(a) for key, a in mean_accuracy.items()},
        "fold_accuracy_std": {key: float(np.std(runs[0], ddof=1)) for key, runs in accuracy.items()},
        "ratios": ratios,
        "targets": targets,
    }


def _target(name: str, value: float, bound: float, *, at_most: bool, ceiling: float) -> dict[str, Any]:
    met = value <= bound if at_most else value >= bound
    return {"target": name, "value": value, "bound": bound, "met": met, "at_the_gemm_limit": ceiling}


def _print(results: dict[str, Any], console: Console) -> None:
    """The per-epoch table, the trial table and the targets."""
    med, ratios, settings = results["median_seconds"], results["ratios"], results["settings"]
    batches, repeats = settings["batches"], settings["repeats"]
    table = Table(title=f"One epoch of {settings['rows']:,} rows, seconds per model (median of {repeats})")
    table.add_column("loop")
    for b in batches:
        table.add_column(f"batch {b}", justify="right")
        table.add_column("x GEMM", justify="right")
    for loop, label in EPOCH_LOOPS.items():
        cells = [(f"{med[f'{loop}@{b}']:.3f}", f"{ratios[f'{loop}@{b} / gemm@{b}']:.2f}") for b in batches]
        table.add_row(label, *[c for pair in cells for c in pair])
    console.print(table)
    trial = Table(title=f"One 5-fold trial, {settings['trial_epochs']} epochs, seconds (median of {repeats})")
    trial.add_column("trial")
    for b in batches:
        trial.add_column(f"batch {b}", justify="right")
        trial.add_column("CV accuracy (fold std)", justify="right")
    for loop, label in TRIAL_LOOPS.items():
        cells = [
            (f"{med[f'{loop}@{b}']:.2f}", f"{results['median_accuracy'][f'{loop}@{b}']:.4f} "
             f"({results['fold_accuracy_std'][f'{loop}@{b}']:.4f})")
            for b in batches
        ]  # fmt: skip
        trial.add_row(label, *[c for pair in cells for c in pair])
    console.print(trial)
    for b in batches:
        console.print(
            f"batch {b}: tutorial / fit_folds {ratios[f'tutorial@{b} / folds@{b}']:.2f}x, "
            f"tutorial / fit {ratios[f'tutorial@{b} / fit@{b}']:.2f}x, "
            f"5-fold trial skorch / hpsearch {ratios[f'skorch@{b} / hpsearch@{b}']:.2f}x"
        )
    for t in results["targets"]:
        sign = "<=" if "within" in t["target"] else ">="
        verdict = "[green]met[/]" if t["met"] else "[red]missed[/]"
        console.print(
            f"{verdict}: {t['target']}: {t['value']:.2f}x (target {sign} {t['bound']}x; "
            f"at this machine's GEMM limit: {t['at_the_gemm_limit']:.2f}x)"
        )


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in avg) + " (1, 5, 15 min)"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
