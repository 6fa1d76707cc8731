"""final-test's files and terminal tables: what ``analysis.final_test`` computed, written and shown."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from rich.console import Console
from sklearn.metrics import ConfusionMatrixDisplay

from hpsearch.analysis.final_test import FinalTest
from hpsearch.errors import ConfigError
from hpsearch.render.tables import rich_table
from hpsearch.text import format_value, mean_std
from hpsearch.training.bundle import save_bundle
from hpsearch.training.ensemble import save_ensemble


def prepare_folder(folder: Path) -> Path:
    """Create the output folder before training, so an unwritable one costs nothing and does not use up the test split.

    Raises:
        ConfigError: the folder cannot be created.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write to {folder}: {e.strerror or e}") from None
    return folder


def write_final_test(folder: Path, result: FinalTest) -> None:
    """``model.safetensors`` (the self-describing bundle ``hpsearch predict`` and ``load_model`` read),
    ``model.pt`` (a bare ``state_dict``; a fold-ensemble's: ``{k}.`` before member k's names),
    ``final_test.json``, ``per_class.csv`` and ``confusion_matrix.png``.

    Raises:
        ConfigError: the folder cannot be written.
    """
    model, doc, scores = result.model, result.doc, result.scores
    try:
        if result.header is not None and result.parts is not None:
            save_ensemble(folder / "model.safetensors", result.parts, result.header)
        elif result.header is not None and result.shift is not None and result.scale is not None:
            save_bundle(folder / "model.safetensors", model, result.header, result.shift, result.scale, result.offset)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "model.pt")
        (folder / "final_test.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        with (folder / "per_class.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(scores.per_class[0]))
            writer.writeheader()
            writer.writerows(scores.per_class)
        _confusion_png(scores.confusion, [row["class"] for row in scores.per_class], folder / "confusion_matrix.png")
    except OSError as e:
        raise ConfigError(f"cannot write to {folder}: {e.strerror or e}") from None


def _confusion_png(confusion: np.ndarray, classes: list[str], path: Path) -> None:
    # a bare Figure renders with Agg and is never registered with pyplot, so nothing is left open
    size = max(5.0, 0.5 * len(classes))
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay(confusion, display_labels=classes).plot(ax=ax, colorbar=False, values_format="d")
    ax.set_title("confusion matrix on the test split")
    fig.savefig(path, dpi=100)


def show_final_test(console: Console, doc: dict[str, Any], folder: Path) -> None:
    """The final test on the terminal: what was retrained and scored, the loss apart from the metrics, per class."""
    data, loss, metrics = doc["data"], doc["loss"], doc["metrics"]
    how = (
        "its fold-models as the search trained them, their probabilities averaged"
        if doc.get("model") == "fold-ensemble"
        else f"retrained on all {data['n_train']} training rows (seed {doc['seed']})"
    )
    console.print(
        f"final test of trial {doc['trial']} of study {doc['study']!r}: {how}, "
        f"scored once on {data['n_test']} test rows",
        markup=False,
    )
    params = [(k, format_value(v)) for k, v in doc["params"].items()]
    test_vs_cv = ("test", "test 95% interval", "CV mean ± std")
    loss_ci = _interval(loss.get("test_ci"))
    loss_row = ["loss", f"{loss['test']:.4f}", loss_ci, mean_std(loss["cv_mean"], loss["cv_std"])]
    cis = metrics.get("test_ci", {})
    metric_rows = [
        [k, f"{value:.4f}", _interval(cis.get(k)), mean_std(metrics["cv_mean"].get(k), metrics["cv_std"].get(k))]
        for k, value in metrics["test"].items()
    ]
    class_rows = [
        [row["class"], *(f"{row[k]:.4f}" for k in ("precision", "recall", "f1")), str(row["support"])]
        for row in doc["per_class"]
    ]
    console.print(rich_table(pd.DataFrame(params, columns=["parameter", "value"])))
    console.print(rich_table(pd.DataFrame([loss_row], columns=["figure", *test_vs_cv]), "loss: cross-entropy"))
    metrics_df = pd.DataFrame(metric_rows, columns=["metric", *test_vs_cv])
    console.print(rich_table(metrics_df, "metrics (precision, recall, F1: macro averages over classes)"))
    classes_df = pd.DataFrame(class_rows, columns=["class", "precision", "recall", "f1", "support"])
    console.print(rich_table(classes_df, "per class on the test split"))
    wilson = (doc.get("intervals") or {}).get("accuracy_wilson")
    if wilson:
        console.print(f"95% intervals: bootstrap over the test rows; accuracy by Wilson's score: {_interval(wilson)}")
    written = "model.safetensors, model.pt, final_test.json, per_class.csv and confusion_matrix.png"
    console.print(f"wrote {written} to {folder}", markup=False)


def _interval(pair: list[float | None] | None) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f"[{pair[0]:.4f}, {pair[1]:.4f}]"
