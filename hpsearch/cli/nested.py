"""``hpsearch nested``: nested cross-validation of a study definition, each outer fold a study of its own."""

from __future__ import annotations

from pathlib import Path
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


@app.command()
def nested(
    outer: Annotated[int, typer.Option(min=2, help="K of the outer K-fold: studies run, one per outer fold.")] = 5,
    trials: Annotated[int, typer.Option(min=1, help="Finished trials of each outer fold's study.")] = 20,
    folds: FoldsOption = None,
    epochs: EpochsOption = None,
    dataset: DatasetOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    groups: GroupsOption = None,
    metric: MetricOption = None,
    pruner: PrunerOption = None,
    seed: SeedOption = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    storage: StorageOption = "sqlite:///nested.db",
    study_name: Annotated[
        str | None,
        typer.Option(help="Prefix of the outer studies' names: <name>-outer<k>of<K>. (default: the data set's)"),
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Time budget of each outer fold's study.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default: reports/<study-name>/nested/).")] = None,
    device: DeviceOption = "auto",
    jobs: JobsOption = 1,
    quiet: QuietOption = False,
    debug: Debug = False,
) -> None:
    """How good is the whole search? Run it in each of K outer folds of the training split and score each chosen
    trial on its outer fold: the outer scores' mean and interval, beside the chosen trials' inner CV figure.

    The outer studies share one storage and resume: the same command continues them. The test split is not used.
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
            quiet=True,
            sets=set_ or (),
            dataset=dataset,
            data=str(data) if data else None,
            target=target,
            groups=groups,
            folds=folds,
            epochs=epochs,
            metric=metric,
            pruner=pruner,
            seed=seed,
        )
        return run, WorkerConfig(jobs=jobs, threads=max(1, available_cores() // jobs))

    cfg, workers = guarded(debug, build)
    guarded(debug, lambda: _nested(cfg, workers, outer, out, quiet))


def _nested(cfg: Any, workers: Any, outer: int, out: Path | None, quiet: bool) -> None:
    import optuna

    from hpsearch.api.nested import nested_cv
    from hpsearch.render.nested import estimate, fold_line, show_nested, write_nested

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per outer fold, not one per trial
    metric = cfg.definition.metric
    try:
        result = nested_cv(
            cfg,
            outer=outer,
            workers=workers,
            on_fold=None if quiet else lambda f: stdout.print(fold_line(f, metric), soft_wrap=True),
        )
    except KeyboardInterrupt:
        raise fail("interrupted: finished trials are kept; run the same command again to continue", 130) from None
    written = write_nested(out or Path("reports") / cfg.study_name / "nested", result)
    if quiet:
        stdout.print(estimate(result), soft_wrap=True)
    else:
        show_nested(stdout, result)
        stdout.print(f"wrote {', '.join(str(p) for p in written)}", soft_wrap=True)
