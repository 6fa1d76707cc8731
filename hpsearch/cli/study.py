"""``hpsearch study``: options -> RunConfig -> run_study, with a live display or one line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hpsearch.cli.common import (
    ConfigOption,
    DataOption,
    DatasetOption,
    Debug,
    DeviceOption,
    EpochsOption,
    FoldsOption,
    GroupsOption,
    JobsOption,
    MetricOption,
    ModelsOption,
    PrunerOption,
    QuietOption,
    SeedOption,
    SetOption,
    StorageOption,
    TargetOption,
    app,
    fail,
    guarded,
    stdout,
)
from hpsearch.config import Sampler


@app.command()
def study(
    trials: Annotated[
        int, typer.Option(min=1, help="Finished trials (complete or pruned) the study should hold when the run ends.")
    ] = 50,
    folds: FoldsOption = None,
    epochs: EpochsOption = None,
    batch_size: Annotated[int | None, typer.Option(help="Mini-batch size. (default: 64)")] = None,
    dataset: DatasetOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    groups: GroupsOption = None,
    test_size: Annotated[float | None, typer.Option(help="Hold-out fraction without an official test split.")] = None,
    metric: MetricOption = None,
    sampler: Annotated[Sampler | None, typer.Option(help="Optuna sampler. (default: tpe)")] = None,
    pruner: PrunerOption = None,
    seed: SeedOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    storage: StorageOption = "sqlite:///study.db",
    study_name: Annotated[
        str | None, typer.Option(help="Study name. (default: the data set's name; a table's file stem)")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="The study's time budget: no trial starts after it; the running one stops, pruned."),
    ] = None,
    device: DeviceOption = "auto",
    jobs: JobsOption = 1,
    heartbeat: Annotated[int, typer.Option(min=1, help="Heartbeat seconds; a trial silent 3 beats is retried.")] = 10,
    storage_patience: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for a storage that stops answering or is full.")
    ] = 120,
    quiet: QuietOption = False,
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
