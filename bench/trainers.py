"""Autograd against the hand-written backward: one whole 5-fold trial each way, side by side.

``python -m bench.trainers`` (``nox -s bench -- --trainers``) trains the speed bench's MLP
(784-512-512-10, Adam, Fashion-MNIST rows) as a trial does: ``cross_validate`` over 5 folds,
on a CPU one fold-model per core. The two trainers differ only in the step: the package's
(the hand-written forward and backward over flat buffers, torch.optim's functional kernels) and
autograd with a fused ``torch.optim`` optimizer and ``CosineAnnealingLR`` (bench/autograd.py). Same levers for both:
in-memory batches, flushed denormals, one fold-model per core. Repeats are interleaved
(A B A B ...); the table shows medians. Writes bench/trainers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import loops
from bench.autograd import AutogradTrainer
from hpsearch.config import CVConfig, DataConfig, TrainConfig
from hpsearch.data import load_training
from hpsearch.training import folds as folds_module
from hpsearch.training.cv import cross_validate, make_splits

RESULTS = Path(__file__).with_name("trainers.json")
TRAINERS = {"autograd": AutogradTrainer, "hand-written": folds_module.Trainer}


@contextmanager
def _trainer(cls: type) -> Iterator[None]:
    """Let ``cross_validate`` train with ``cls`` for the duration."""
    before = folds_module.Trainer
    folds_module.Trainer = cls  # type: ignore[misc]
    try:
        yield
    finally:
        folds_module.Trainer = before  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="Fashion-MNIST training rows (default 10,000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each trial (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the table shows medians")
    args = parser.parse_args(argv)
    console = Console(width=120)
    console.print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    train, _ = load_training(DataConfig(dataset="fashion-mnist"))
    train = replace(train, x=train.x[: args.rows], y=train.y[: args.rows])
    splits = make_splits(train.y, CVConfig(folds=loops.FOLDS))
    cases = {
        f"{name}@{b}/{label}": (cls, replace(cfg, batch_size=b, epochs=args.epochs))
        for label, cfg in {
            "512x2 adam": loops.config(64),
            "128x2 adam dropout 0.2 cosine": TrainConfig(
                depth=2, width=128, lr=1e-3, dropout=0.2, lr_schedule="cosine"
            ),
        }.items()
        for b in (64, 256)
        for name, cls in TRAINERS.items()
    }
    small = replace(train, x=train.x[:1000], y=train.y[:1000])
    for cls, cfg in {c[0]: c[1] for c in cases.values()}.items():  # warm up each trainer once
        with _trainer(cls):
            cross_validate(small, make_splits(small.y, CVConfig(folds=loops.FOLDS)), replace(cfg, epochs=1))
    times: dict[str, list[float]] = {key: [] for key in cases}
    accuracy: dict[str, float] = {}
    for r in range(args.repeats):
        console.print(f"round {r + 1}/{args.repeats}")
        for key, (cls, cfg) in cases.items():
            results: list[Any] = []
            with _trainer(cls):
                times[key].append(loops.timed(lambda c=cfg, out=results: out.append(cross_validate(train, splits, c))))
            accuracy[key] = results[0].mean["accuracy"]
    rows = _rows(times, accuracy)
    _print(rows, args, console)
    RESULTS.write_text(json.dumps({"rows": args.rows, "epochs": args.epochs, "results": rows}, indent=2) + "\n")
    return 0


def _rows(times: dict[str, list[float]], accuracy: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for key, seconds in times.items():
        name, rest = key.split("@", 1)
        batch, label = rest.split("/", 1)
        out.append(
            {"trainer": name, "batch": int(batch), "model": label, "seconds": seconds,
             "median": statistics.median(seconds), "cv_accuracy": accuracy[key]}
        )  # fmt: skip
    return out


def _print(rows: list[dict[str, Any]], args: argparse.Namespace, console: Console) -> None:
    table = Table(title=f"one 5-fold trial, {args.epochs} epochs, {args.rows:,} rows: median of {args.repeats} (s)")
    for column in ("model", "batch", "autograd", "hand-written", "autograd / hand-written", "CV accuracy a / h"):
        table.add_column(column, justify="left" if column == "model" else "right")
    pairs: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        pairs.setdefault((row["model"], row["batch"]), {})[row["trainer"]] = row
    for (model, batch), pair in pairs.items():
        a, h = pair["autograd"], pair["hand-written"]
        table.add_row(
            model, str(batch), f"{a['median']:.2f}", f"{h['median']:.2f}", f"{a['median'] / h['median']:.3f}",
            f"{a['cv_accuracy']:.4f} / {h['cv_accuracy']:.4f}",
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
