"""Constant learning rate against cosine annealing, on one fold of a study's own K-fold split.

The pilot behind ``lr_schedule = "cosine"`` in studies/fashion-mnist.toml: one MLP trained on
the training folds of fold ``--fold`` (the split every trial of a 5-fold, seed-0 study uses)
under each schedule, same seed, scored on that fold's validation rows. The test split is never
read. Prints the table and writes bench/schedule.json. On our 2-core machine the default
(Fashion-MNIST, 512-512, Adam 1e-3, dropout 0.2, 20 epochs) takes ~1.5 min.

    python -m bench.schedule [--dataset digits] [--epochs 30] [--width 1024] ...
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hpsearch.config import LR_SCHEDULES, OPTIMIZERS, CVConfig, DataConfig, TrainConfig
from hpsearch.data import load_training
from hpsearch.training import as_tensors, classification_metrics, evaluate, fit, make_splits

RESULTS = Path(__file__).with_name("schedule.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=1, help="which fold scores, from 1")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    data = load_training(DataConfig(dataset=args.dataset))[0]
    train_rows, val_rows = make_splits(data.y, CVConfig(folds=args.folds), data.classes)[args.fold - 1]
    x, y = as_tensors(data.x[train_rows], data.y[train_rows], "cpu")
    x_val, y_val = as_tensors(data.x[val_rows], data.y[val_rows], "cpu")
    base = TrainConfig(
        depth=args.depth, width=args.width, optimizer=args.optimizer, lr=args.lr, dropout=args.dropout,
        batch_size=args.batch_size, epochs=args.epochs,
    )  # fmt: skip
    mlp = f"{args.depth}x{args.width} {args.optimizer} lr {args.lr:g} dropout {args.dropout:g}"
    table = Table(title=f"{args.dataset}, fold {args.fold} of {args.folds}: {mlp}, {args.epochs} epochs")
    for column in ("lr_schedule", "val loss", "val accuracy", "seconds"):
        table.add_column(column, justify="left" if column == "lr_schedule" else "right")
    rows = []
    for schedule in LR_SCHEDULES:
        start = time.perf_counter()
        loss, predicted = evaluate(fit(x, y, data.n_classes, replace(base, lr_schedule=schedule)), x_val, y_val)
        accuracy = classification_metrics(y_val.numpy(), predicted, data.n_classes)["accuracy"]
        rows.append(
            {"lr_schedule": schedule, "loss": loss, "accuracy": accuracy, "seconds": time.perf_counter() - start}
        )
        table.add_row(schedule, f"{loss:.4f}", f"{accuracy:.4f}", f"{rows[-1]['seconds']:.0f}")
    Console().print(table)
    RESULTS.write_text(json.dumps({"args": vars(args), "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
