"""How figures and parameters read in tables and lines, the same in every command."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def format_params(params: dict[str, Any]) -> str:
    """``depth=2, width=128, lr=0.001``: parameters on one line, floats to 3 significant digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def format_value(value: Any) -> str:
    """A parameter's value in a table cell: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def mean_std(mean: Any, std: Any) -> str:
    """``0.9512 ± 0.0031``; the mean alone without a std (one fold); ``-`` without a mean."""
    if missing(mean):
        return "-"
    return f"{mean:.4f}" if missing(std) else f"{mean:.4f} ± {std:.4f}"


def missing(value: Any) -> bool:
    """None, pandas' NA, or a float NaN: a figure that is not there."""
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))
