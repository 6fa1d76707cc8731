"""Nested CV's result on the terminal and as files: a table of the outer folds, the estimate in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from hpsearch.analysis.nested import Nested, OuterFold
from hpsearch.errors import ConfigError
from hpsearch.render.tables import rich_table


def fold_line(fold: OuterFold, metric: str) -> str:
    """One outer fold as it finishes: the trial its study chose, its inner CV mean and its outer score."""
    return (
        f"outer fold {fold.fold}: study {fold.study!r} chose trial {fold.trial}: inner CV {metric} {fold.inner:.4f}, "
        f"outer {metric} {fold.outer[metric]:.4f} on {fold.n_held} held-out rows"
    )


def estimate(nested: Nested) -> str:
    """The answer in one sentence: the procedure's outer score with its interval, and the inner CV's optimism."""
    low, high = nested.interval
    side = "optimistic" if nested.gap > 0 else "pessimistic"
    return (
        f"the search, run on data like these, gives models of {nested.metric} {nested.mean:.4f} "
        f"({nested.level:.0%} t interval {low:.4f} to {high:.4f} over {len(nested.folds)} outer folds); "
        f"the chosen trials' inner CV {nested.metric} was {nested.inner:.4f}: {side} by {abs(nested.gap):.4f}"
    )


def show_nested(console: Console, nested: Nested) -> None:
    """Print the outer folds' table and the estimate."""
    shown = nested.table().drop(columns="study").round(4)  # fold k's study is <name>-outer<k>of<K>; nested.csv names it
    console.print(rich_table(shown, f"nested CV of {nested.metric}: {len(nested.folds)} outer folds"))
    console.print(estimate(nested), soft_wrap=True)


def write_nested(folder: Path, nested: Nested) -> list[Path]:
    """``nested.json`` (every figure) and ``nested.csv`` (the outer folds' table) in ``folder``.

    Raises:
        ConfigError: the folder cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        doc, table = folder / "nested.json", folder / "nested.csv"
        doc.write_text(json.dumps(nested.to_dict() | {"estimate": estimate(nested)}, indent=2), encoding="utf-8")
        nested.table().to_csv(table, index=False)
    except OSError as e:
        raise ConfigError(f"cannot write {folder}: {e.strerror or e}") from None
    return [doc, table]
