"""The ``hpsearch`` command line: options -> RunConfig -> one call per command.

Errors the user can fix print one line on stderr and exit 2; Ctrl-C exits 130 and says how
to resume; anything unexpected prints one line and exits 1 (a traceback only with --debug).
Command modules are imported inside the commands so that ``hpsearch --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

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


class DatasetName(StrEnum):
    mnist_5k = "mnist-5k"
    digits = "digits"
    fashion_mnist = "fashion-mnist"
    mnist = "mnist"
    table = "table"


class MetricName(StrEnum):
    accuracy = "accuracy"
    precision = "precision"
    recall = "recall"
    f1 = "f1"
    loss = "loss"


class SamplerName(StrEnum):
    tpe = "tpe"
    random = "random"


class PrunerName(StrEnum):
    none = "none"
    median = "median"
    hyperband = "hyperband"
    wilcoxon = "wilcoxon"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def _guarded(debug: bool, action: Callable[[], T]) -> T:
    """Run a command body; turn its errors into one line and an exit code."""
    try:
        return action()
    except HpsearchError as e:
        if debug:
            raise
        raise _fail(str(e), e.exit_code) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as e:
        if debug:
            raise
        raise _fail(f"unexpected {type(e).__name__}: {e} (run again with --debug for the traceback)", 1) from None


@app.callback()
def _group() -> None:
    """Search MLP hyperparameters with Optuna, score every trial by K-fold cross-validation."""


@app.command()
def study(
    trials: Annotated[int, typer.Option(min=1, help="Complete trials the study should hold.")] = 50,
    folds: Annotated[int | None, typer.Option(min=2, help="K of K-fold cross-validation. (default: 5)")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per fold. (default: 10)")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size. (default: 64)")] = None,
    dataset: Annotated[DatasetName | None, typer.Option(help="Named data set. (default: mnist-5k)")] = None,
    data: Annotated[
        Path | None, typer.Option(help="A data file or folder: IDX folder, mnist.pkl.gz, CSV, Parquet or NPZ.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Label column of a table file.")] = None,
    test_size: Annotated[
        float | None, typer.Option(min=0.01, max=0.99, help="Hold-out fraction without an official test split.")
    ] = None,
    metric: Annotated[MetricName | None, typer.Option(help="Objective (CV mean). (default: accuracy)")] = None,
    sampler: Annotated[SamplerName | None, typer.Option(help="Optuna sampler. (default: tpe)")] = None,
    pruner: Annotated[PrunerName, typer.Option(help="Stop hopeless trials between folds.")] = PrunerName.median,
    seed: Annotated[int | None, typer.Option(help="Seeds split, folds, training and sampler. (default: 0)")] = None,
    config: Annotated[Path | None, typer.Option(help="Study definition (TOML), e.g. studies/default.toml.")] = None,
    storage: Annotated[str, typer.Option(help="Optuna storage URL or SQLite file.")] = "sqlite:///study.db",
    study_name: Annotated[str | None, typer.Option(help="Study name. (default: the data set's name)")] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Stop starting trials after this many seconds.")] = None,
    device: Annotated[DeviceName, typer.Option(help="auto takes a GPU when torch sees one.")] = DeviceName.auto,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes here, with cores/jobs torch threads each.")] = 1,
    heartbeat: Annotated[int, typer.Option(min=1, help="Heartbeat seconds; a trial silent 3 beats is retried.")] = 10,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")] = False,
    debug: Debug = False,
) -> None:
    """Search MLPs, scoring every trial by K-fold cross-validation on the training split.

    Workers may share one study (--jobs N here, the same command on other machines): they stop at --trials together.
    """

    def build() -> Any:
        from hpsearch.config import Definition, RunConfig, load_definition, with_overrides
        from hpsearch.storage import storage_url
        from hpsearch.workers import WorkerConfig

        base = load_definition(config) if config is not None else Definition()
        defn = with_overrides(
            base,
            dataset=dataset.value if dataset else None,
            data=str(data) if data else None,
            target=target,
            test_size=test_size,
            folds=folds,
            epochs=epochs,
            batch_size=batch_size,
            metric=metric.value if metric else None,
            sampler=sampler.value if sampler else None,
            seed=seed,
        )
        run = RunConfig(
            definition=defn,
            storage=storage_url(storage),
            study_name=study_name or defn.data.dataset,
            trials=trials,
            timeout=timeout,
            pruner=pruner.value,
            device=device.value,
            quiet=quiet,
        )
        threads = None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)
        return run, WorkerConfig(jobs=jobs, threads=threads, heartbeat=heartbeat)

    cfg, workers = _guarded(debug, build)
    _guarded(debug, lambda: _run_study(cfg, workers))


def _run_study(cfg: Any, workers: Any) -> None:
    import optuna

    from hpsearch.console import LiveProgress, summary
    from hpsearch.storage import redact
    from hpsearch.study import complete_trials, finished_trials, run_study
    from hpsearch.text import format_params

    # hpsearch reports trials itself; Optuna's per-trial log lines (and its tracebacks of an
    # interrupted trial) would break the one-line contract on stderr
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    where = f"study {cfg.study_name!r} in {redact(cfg.storage)}"
    metric = cfg.definition.metric
    live: LiveProgress | None = None if cfg.quiet else LiveProgress(stdout, metric)
    try:
        if live is None:
            outcome = run_study(cfg, None, workers)
        else:
            with live:
                outcome = run_study(cfg, live, workers)
    except KeyboardInterrupt:
        message = f"interrupted: finished trials are kept in {where}; run the same command again to continue"
        raise _fail(message, 130) from None
    try:
        done, complete = len(finished_trials(outcome.study)), complete_trials(outcome.study)
        if outcome.finished_before >= outcome.target:
            held = f"{where} already holds {done} finished trials (--trials {cfg.trials})"
            stdout.print(f"{held}; raise --trials to run more")
        elif outcome.finished_before > 0:
            stdout.print(f"continued {where}: {outcome.finished_before} -> {done} finished trials")
        if outcome.timed_out:
            stdout.print(f"stopped by --timeout with {done}/{cfg.trials} trials; the same command continues the study")
        if not complete and done:
            stdout.print(
                f"none of the {done} trials completed: they diverged (NaN or infinite loss) or were pruned; "
                "check the learning-rate range of the study definition",
                soft_wrap=True,
            )
        if cfg.quiet:
            best = complete and outcome.study.best_trial
            line = (
                f"best trial {best.number}: CV {metric} {best.value:.4f} ({format_params(best.params)})" if best else ""
            )
            stdout.print(line or "no trial has completed yet", soft_wrap=True)
        else:
            stdout.print(summary(outcome.study, metric))
    finally:
        outcome.close()  # the storage's connections


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


StorageOption = Annotated[
    str | None, typer.Option(help="Optuna storage URL; overrides PATH (e.g. postgresql://user:pw@host/db).")
]
StudyNameOption = Annotated[str | None, typer.Option(help="Study to read (default: the only one in the storage).")]


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="SQLite study file.")] = Path("study.db"),
    storage: StorageOption = None,
    study_name: StudyNameOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for CSV/MD/HTML/PNG (default: reports/<study-name>/).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Rows of the per-trial tables on the terminal.")] = 10,
    sort: Annotated[
        str | None, typer.Option(help="Column to sort the per-trial tables by (default: the metric).")
    ] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="table: terminal + files; json: stdout.")] = (
        ReportFormat.table
    ),
    debug: Debug = False,
) -> None:
    """Report what a study found: loss apart from accuracy, precision, recall and F1."""
    from hpsearch.storage import storage_url

    url = storage or storage_url(str(path))
    _guarded(debug, lambda: _report(url, study_name, out, top, sort, output_format.value))


def _report(url: str, study_name: str | None, out_dir: Path | None, top: int, sort: str | None, fmt: str) -> None:
    from hpsearch.report import run_report

    run_report(url, study_name, out_dir=out_dir, top=top, sort=sort, fmt=fmt, console=stdout)


@app.command("final-test")
def final_test(
    which: Annotated[str, typer.Argument(help="best, simplest (fewest params within 1 SE), or trial number.")] = "best",
    storage: Annotated[str, typer.Option(help="Optuna storage URL or SQLite file.")] = "sqlite:///study.db",
    study_name: StudyNameOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default: reports/<study-name>/final-test/).")] = None,
    device: Annotated[DeviceName, typer.Option(help="auto takes a GPU when torch sees one.")] = DeviceName.auto,
    debug: Debug = False,
) -> None:
    """Retrain the chosen trial on the whole training split and score it once on the test split."""
    from hpsearch.storage import storage_url

    url = storage_url(storage)
    _guarded(debug, lambda: _final_test(url, study_name, which, out, device.value))


def _final_test(url: str, study_name: str | None, which: str, out_dir: Path | None, device: str) -> None:
    from hpsearch.final_test import run_final_test

    run_final_test(url, study_name, which, out_dir=out_dir, device=device, console=stdout, err_console=err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code. Usage errors print one line and return 2."""
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
