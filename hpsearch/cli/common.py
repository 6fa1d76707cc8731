"""What every command shares: the Typer app, the consoles, and errors turned into one line and an exit code.

Errors the user can fix print one line on stderr and exit 2; Ctrl-C exits 130 and says how
to resume; anything unexpected prints one line and exits 1 (a traceback only with --debug).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from hpsearch.config import DatasetName, Device, Metric, Pruner
from hpsearch.errors import HpsearchError

app = typer.Typer(
    name="hpsearch",
    help="Search MLP hyperparameters with Optuna, score every trial by K-fold cross-validation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")

Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
StorageOption = Annotated[
    str, typer.Option(help="Optuna storage URL or SQLite file (study.db, postgresql://user:pw@host/db).")
]
StudyNameOption = Annotated[str | None, typer.Option(help="Study to read (default: the only one in the storage).")]
ModelsOption = Annotated[
    Path | None,
    typer.Option(
        help="A fold-ensemble study's kept fold-models (default: beside an SQLite file, else ./hpsearch-models)."
    ),
]


# the options `study` and `nested` share: what decides the study
FoldsOption = Annotated[int | None, typer.Option(help="K of K-fold cross-validation. (default: 5)")]
EpochsOption = Annotated[int | None, typer.Option(help="Epochs per fold. (default: 10)")]
DatasetOption = Annotated[DatasetName | None, typer.Option(help="Named data set. (default: mnist-5k)")]
DataOption = Annotated[
    Path | None, typer.Option(help="A data file or folder: IDX folder, mnist.pkl.gz, CSV, Parquet or NPZ.")
]
TargetOption = Annotated[str | None, typer.Option(help="Label column of a table file.")]
GroupsOption = Annotated[
    str | None, typer.Option(help="Group column of a table file: a group's rows stay on one side of every split.")
]
MetricOption = Annotated[Metric | None, typer.Option(help="Objective (CV mean). (default: accuracy)")]
PrunerOption = Annotated[Pruner | None, typer.Option(help="Stop hopeless trials after an epoch. (default: median)")]
SeedOption = Annotated[int | None, typer.Option(help="Seeds split, folds, training and sampler. (default: 0)")]
ConfigOption = Annotated[Path | None, typer.Option(help="Study definition (TOML), e.g. studies/default.toml.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="section.key=value for any definition field (TOML value syntax); repeatable."),
]
DeviceOption = Annotated[Device, typer.Option(help="auto takes a GPU when torch sees one.")]
JobsOption = Annotated[int, typer.Option(min=1, help="Worker processes here, with cores/jobs torch threads each.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")]


class _WarningLines(logging.Handler):
    """hpsearch's warnings (a storage that went away, a trial taken over) as ``warning: ...`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"warning: {record.getMessage()}", markup=False)


def show_warnings() -> None:
    """Route the ``hpsearch`` logger's warnings to stderr, once."""
    log = logging.getLogger("hpsearch")
    if not any(isinstance(h, _WarningLines) for h in log.handlers):
        log.addHandler(_WarningLines(logging.WARNING))
        log.propagate = False


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise."""
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run a command body; turn its errors into one line and an exit code."""
    try:
        return action()
    except HpsearchError as e:
        if debug:
            raise
        raise fail(str(e), e.exit_code) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        if debug:
            raise
        raise fail(f"unexpected {type(e).__name__}: {e} (run again with --debug for the traceback)", 1) from None
