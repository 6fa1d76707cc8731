"""MkDocs hook: write the generated reference pages before every build (docs/generate.py)."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """Rewrite docs/reference/cli.md and definition.md from the code (only where they differ)."""
    runpy.run_path(str(Path(__file__).parent / "generate.py"))["write"]()
