"""How figures and parameters read in tables and lines, the same in every command."""

from __future__ import annotations

import math
from typing import Any


def format_params(params: dict[str, Any]) -> str:
    """``depth=2, width=128, lr=0.001``: parameters on one line, floats to 3 significant digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def mean_std(mean: Any, std: Any) -> str:
    """``0.9512 ± 0.0031``; the mean alone without a std (one fold); ``-`` without a mean."""
    if _missing(mean):
        return "-"
    return f"{mean:.4f}" if _missing(std) else f"{mean:.4f} ± {std:.4f}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
