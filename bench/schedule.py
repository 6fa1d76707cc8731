"""Training settings side by side on one fold of a study's own K-fold split: the pilots of a definition.

One MLP per combination of the ``--vary`` values, trained on the training folds of fold
``--fold`` (the split every trial of a 5-fold, seed-0 study uses), same seed, scored on that
fold's validation rows. The test split is never read. Prints the table and writes
bench/schedule.json.

The default compares a constant learning rate with cosine annealing: the pilot behind
``lr_schedule = "cosine"`` in studies/fashion-mnist.toml (Fashion-MNIST, 512-512, Adam 1e-3,
dropout 0.2, 20 epochs; ~1.5 min on our 2-core machine). The pilot behind the regularisers of
studies/fashion-mnist-hour.toml:

    python -m bench.schedule --lr-schedule cosine --vary input_dropout=0,0.2 label_smoothing=0,0.1
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hpsearch.config import INT_FIELDS, OPTIMIZERS, CVConfig, DataConfig, TrainConfig
from hpsearch.data import load_training
from hpsearch.training import as_tensors, classification_metrics, evaluate, fit, make_splits

RESULTS = Path(__file__).with_name("schedule.json")
_FIELDS = {f.name for f in fields(TrainConfig)} - {"seed", "device"}


def _values(item: str) -> tuple[str, list[Any]]:
    """``label_smoothing=0,0.1`` -> ("label_smoothing", [0.0, 0.1])."""
    name, _, raw = item.partition("=")
    if name not in _FIELDS or not raw:
        raise argparse.ArgumentTypeError(f"--vary takes FIELD=V1,V2 with a training setting, not {item!r}")
    kind = str if name in ("optimizer", "lr_schedule") else int if name in INT_FIELDS else float
    return name, [kind(v) for v in raw.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=1, help="which fold scores, from 1")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", default="constant")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--vary", type=_values, nargs="+", default=[("lr_schedule", ["constant", "cosine"])], metavar="FIELD=V1,V2"
    )
    args = parser.parse_args()

    data = load_training(DataConfig(dataset=args.dataset))[0]
    train_rows, val_rows = make_splits(data.y, CVConfig(folds=args.folds), data.classes)[args.fold - 1]
    x, y = as_tensors(data.x[train_rows], data.y[train_rows], "cpu")
    x_val, y_val = as_tensors(data.x[val_rows], data.y[val_rows], "cpu")
    base = TrainConfig(
        depth=args.depth, width=args.width, optimizer=args.optimizer, lr=args.lr, lr_schedule=args.lr_schedule,
        dropout=args.dropout, batch_size=args.batch_size, epochs=args.epochs,
    )  # fmt: skip
    names = [name for name, _ in args.vary]
    mlp = f"{args.depth}x{args.width} {args.optimizer} lr {args.lr:g} dropout {args.dropout:g} {args.lr_schedule}"
    table = Table(title=f"{args.dataset}, fold {args.fold} of {args.folds}: {mlp}, {args.epochs} epochs")
    for column in (*names, "val loss", "val accuracy", "seconds"):
        table.add_column(column, justify="left" if column in names else "right")
    rows = []
    for values in itertools.product(*(v for _, v in args.vary)):
        setting = dict(zip(names, values, strict=True))
        start = time.perf_counter()
        loss, predicted, _ = evaluate(fit(x, y, data.n_classes, replace(base, **setting)), x_val, y_val)
        accuracy = classification_metrics(y_val.numpy(), predicted, data.n_classes)["accuracy"]
        rows.append(setting | {"loss": loss, "accuracy": accuracy, "seconds": time.perf_counter() - start})
        table.add_row(*map(str, values), f"{loss:.4f}", f"{accuracy:.4f}", f"{rows[-1]['seconds']:.0f}")
    Console().print(table)
    RESULTS.write_text(json.dumps({"args": vars(args), "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
