"""``hpsearch report``: what a study found, as rich tables or JSON, and as files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from hpsearch.cli.common import Debug, StudyNameOption, app, guarded, stdout

StorageOption = Annotated[
    str | None,
    typer.Option(help="Optuna storage URL or SQLite file; overrides PATH (e.g. postgresql://user:pw@host/db)."),
]


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="SQLite study file.")] = Path("study.db"),
    storage: StorageOption = None,
    study_name: StudyNameOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for CSV/MD/HTML/PNG (default: reports/<study-name>/; none with --format json)."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Rows of the per-trial tables on the terminal.")] = 10,
    sort: Annotated[
        str | None, typer.Option(help="Column to sort the per-trial tables by (default: the metric).")
    ] = None,
    output_format: Annotated[
        Literal["table", "json"],
        typer.Option("--format", help="table: terminal + files; json: stdout, files only with --out."),
    ] = "table",
    debug: Debug = False,
) -> None:
    """Report what a study found: loss apart from the metrics (accuracy, precision, recall, F1, ...)."""
    from hpsearch.store import storage_url

    url = storage_url(storage or str(path))
    guarded(debug, lambda: _report(url, study_name, out, top, sort, output_format))


def _report(url: str, study_name: str | None, out_dir: Path | None, top: int, sort: str | None, fmt: Any) -> None:
    import matplotlib

    from hpsearch.api import report as run_report

    # the command owns its process: draw to files, never a window, with or without a display
    # (the API leaves a notebook's backend alone)
    matplotlib.use("Agg")

    run_report(url, study_name, out_dir=out_dir, top=top, sort=sort, fmt=fmt, console=stdout)
