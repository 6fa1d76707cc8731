"""``hpsearch study``: options -> RunConfig -> run_study, with a live display or one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hpsearch.cli.common import Debug, ModelsOption, StorageOption, app, fail, guarded, stdout
from hpsearch.config import DatasetName, Device, Metric, Pruner, Sampler


@app.command()
def study(
    trials: Annotated[
        int, typer.Option(min=1, help="Finished trials (complete or pruned) the study should hold when the run ends.")
    ] = 50,
    folds: Annotated[int | None, typer.Option(help="K of K-fold cross-validation. (default: 5)")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per fold. (default: 10)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Mini-batch size. (default: 64)")] = None,
    dataset: Annotated[DatasetName | None, typer.Option(help="Named data set. (default: mnist-5k)")] = None,
    data: Annotated[
        Path | None, typer.Option(help="A data file or folder: IDX folder, mnist.pkl.gz, CSV, Parquet or NPZ.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Label column of a table file.")] = None,
    groups: Annotated[
        str | None, typer.Option(help="Group column of a table file: a group's rows stay on one side of every split.")
    ] = None,
    test_size: Annotated[float | None, typer.Option(help="Hold-out fraction without an official test split.")] = None,
    metric: Annotated[Metric | None, typer.Option(help="Objective (CV mean). (default: accuracy)")] = None,
    sampler: Annotated[Sampler | None, typer.Option(help="Optuna sampler. (default: tpe)")] = None,
    pruner: Annotated[
        Pruner | None, typer.Option(help="Stop hopeless trials after an epoch. (default: median)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seeds split, folds, training and sampler. (default: 0)")] = None,
    config: Annotated[Path | None, typer.Option(help="Study definition (TOML), e.g. studies/default.toml.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="section.key=value for any definition field (TOML value syntax); repeatable."),
    ] = None,
    storage: StorageOption = "sqlite:///study.db",
    study_name: Annotated[
        str | None, typer.Option(help="Study name. (default: the data set's name; a table's file stem)")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="The study's time budget: no trial starts after it; the running one stops, pruned."),
    ] = None,
    device: Annotated[Device, typer.Option(help="auto takes a GPU when torch sees one.")] = "auto",
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes here, with cores/jobs torch threads each.")] = 1,
    heartbeat: Annotated[int, typer.Option(min=1, help="Heartbeat seconds; a trial silent 3 beats is retried.")] = 10,
    storage_patience: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for a storage that stops answering or is full.")
    ] = 120,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")] = False,
    models: ModelsOption = None,
    debug: Debug = False,
) -> None:
    """Search MLPs, scoring every trial by K-fold cross-validation on the training split.

    Workers may share one study (--jobs N here, the same command on other machines): they stop at --trials together.
    """

    def build() -> Any:
        from hpsearch.api import run_config
        from hpsearch.search import WorkerConfig, available_cores

        run = run_config(
            config,
            storage=storage,
            study_name=study_name,
            trials=trials,
            timeout=timeout,
            device=device,
            quiet=quiet,
            sets=set_ or (),
            models=str(models) if models is not None else None,
            dataset=dataset,
            data=str(data) if data else None,
            target=target,
            groups=groups,
            test_size=test_size,
            folds=folds,
            epochs=epochs,
            batch_size=batch_size,
            metric=metric,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
        )
        threads = max(1, available_cores() // jobs)
        return run, WorkerConfig(jobs=jobs, threads=threads, heartbeat=heartbeat, patience=storage_patience)

    cfg, workers = guarded(debug, build)
    guarded(debug, lambda: _run_study(cfg, workers))


def _run_study(cfg: Any, workers: Any) -> None:
    import optuna

    from hpsearch.api import run_study
    from hpsearch.render.progress import LiveProgress, summary
    from hpsearch.search import complete_trials, finished_trials
    from hpsearch.store import redact
    from hpsearch.text import format_params

    # hpsearch reports trials itself; Optuna's per-trial log lines (and its tracebacks of an
    # interrupted trial) would break the one-line contract on stderr
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    where = f"study {cfg.study_name!r} in {redact(cfg.storage)}"
    metric = cfg.definition.metric
    live: LiveProgress | None = None if cfg.quiet else LiveProgress(stdout, metric)
    try:
        if live is None:
            outcome = run_study(cfg, workers=workers)
        else:
            with live:
                outcome = run_study(cfg, workers=workers, observer=live)
    except KeyboardInterrupt:
        message = f"interrupted: finished trials are kept in {where}; run the same command again to continue"
        raise fail(message, 130) from None
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
