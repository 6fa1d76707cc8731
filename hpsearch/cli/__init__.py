"""The ``hpsearch`` command line: one module per command; options -> config -> one call.

Command modules import the heavy libraries inside the command functions, so that ``hpsearch
--help`` starts fast. Errors become one line and an exit code (``common.guarded``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from hpsearch.cli import final_test, nested, report, studies, study, use  # noqa: F401 - each registers its command
from hpsearch.cli.common import app, err, show_warnings, stdout

__all__ = ["app", "main", "run"]


def _show_version(value: bool) -> None:
    if value:
        from hpsearch.version import __version__

        stdout.print(f"hpsearch {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _group(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Search MLP hyperparameters with Optuna, score every trial by K-fold cross-validation."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code. Usage errors print one line and return 2."""
    show_warnings()
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="hpsearch", standalone_mode=False)
    except typer.TyperException as e:  # usage errors: unknown option, value out of range, ...
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":
            stdout.print(e.format_message(), markup=False)
            return 0
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err.print(f"error: {e.format_message().replace('Value error, ', '')}{hint}", markup=False)
        return e.exit_code
    except typer.Abort:
        return 130
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
