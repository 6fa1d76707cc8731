"""Tables for people: cells, ``mean ± std`` columns, JSON-safe records, and the one rich table."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from hpsearch.text import format_params, mean_std, missing

TERMINAL_HIDES = ("n_params", "duration_s", "device", "reached", "reason")  # kept in the files, too wide for a terminal
_NUMBER = re.compile(r"^-?[\d.,]+(e[+-]?\d+)?( ± [\d.]+)?$")


def native(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if missing(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None  # JSON has no NaN or inf
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): native(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def cell(value: Any) -> str:
    if missing(value):
        return "–"
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return str(value)


def display(df: pd.DataFrame, params: tuple[str, ...], *, short: bool = False) -> pd.DataFrame:
    """Strings for people: ``mean ± std`` in one column, ``value [low, high]`` in one column (an
    interval's ``_ci_low`` and ``_ci_high``), the parameters on one line."""
    columns: dict[str, list[str]] = {}
    names = [str(c) for c in df.columns]
    for col in names:
        base = col.removesuffix("_mean").removesuffix("_std")
        paired = f"{base}_mean" in names and f"{base}_std" in names
        if col.endswith(("_ci_low", "_ci_high")) and col.rsplit("_ci_", 1)[0] in names:
            continue  # shown with its figure
        if f"{col}_ci_low" in names and f"{col}_ci_high" in names:
            ends = zip(df[col], df[f"{col}_ci_low"], df[f"{col}_ci_high"], strict=True)
            columns[col] = [
                cell(v) if missing(lo) or missing(hi) else f"{v:.4f} [{lo:.4f}, {hi:.4f}]" for v, lo, hi in ends
            ]
        elif paired and col.endswith("_mean"):
            columns[base] = [mean_std(m, s) for m, s in zip(df[col], df[f"{base}_std"], strict=True)]
        elif col in params and "params" not in columns:
            rows = df[[p for p in params if p in names]].to_dict(orient="records")
            columns["params"] = [format_params({str(k): v for k, v in r.items() if not missing(v)}) for r in rows]
        elif not (paired or col in params or (short and col in TERMINAL_HIDES)):
            columns[col] = [cell(v) for v in df[col]]
    return pd.DataFrame(columns, dtype=object)


def rich_table(df: pd.DataFrame, title: str | None = None) -> Table:
    """A rich table of string cells, numbers right-aligned; cells are text, never rich markup."""
    heading = Text(title, style="bold") if title else None
    table = Table(title=heading, title_justify="left", box=box.SIMPLE_HEAD)
    for col in df.columns:
        numeric = all(_NUMBER.match(str(c)) or c == "–" for c in df[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(Text(str(c)) for c in row))
    return table
