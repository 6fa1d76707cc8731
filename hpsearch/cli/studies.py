"""``hpsearch studies`` and ``hpsearch init``: what a storage holds, and a definition to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from hpsearch.cli.common import Debug, app, guarded, stdout
from hpsearch.config import Shipped


@app.command()
def studies(
    path: Annotated[str, typer.Argument(metavar="STORAGE", help="Optuna storage URL or SQLite file.")] = "study.db",
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL or SQLite file; the same as STORAGE, as on every command.")
    ] = None,
    output_format: Annotated[
        Literal["table", "json"], typer.Option("--format", help="table: terminal; json: one document on stdout.")
    ] = "table",
    debug: Debug = False,
) -> None:
    """List the studies in a storage: data set, metric, trials by state, best value."""

    def run() -> None:
        from hpsearch.api import list_studies

        list_studies(storage or path, fmt=output_format, console=stdout)

    guarded(debug, run)


@app.command()
def init(
    name: Annotated[Shipped, typer.Argument(help="Which packaged definition.")] = "default",
    out: Annotated[Path | None, typer.Option(help="File to write (default: NAME.toml here).")] = None,
    debug: Debug = False,
) -> None:
    """Write a packaged study definition to edit and pass to `hpsearch study --config`."""

    def run() -> None:
        from hpsearch.api import init_definition

        path = init_definition(name, out)
        stdout.print(f"wrote {path}; edit it, then: hpsearch study --config {path}", markup=False)

    guarded(debug, run)
