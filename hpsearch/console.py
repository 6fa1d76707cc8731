"""Terminal output of ``hpsearch study``: a live progress display and the closing summary."""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from hpsearch.cv import FIGURES
from hpsearch.storage import TRIAL_MEAN, TRIAL_STD
from hpsearch.study import finished_trials
from hpsearch.text import format_params, mean_std


class LiveProgress:
    """Shows trial i/N, fold k/K, epoch e/E, the best trial so far, elapsed and remaining time."""

    def __init__(self, console: Console, metric: str) -> None:
        self.console, self.metric = console, metric
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("remaining"),
            TimeRemainingColumn(),
            console=console,
        )
        self.best = Text("best: none yet")
        self.live = Live(Group(self.progress, self.best), console=console, refresh_per_second=4, transient=False)
        self.epochs = 0
        self.started_at = time.monotonic()

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live.is_started:
            self.live.stop()

    def started(self, study: optuna.Study, target: int, folds: int, epochs: int) -> None:
        self.live.start()
        self.trials = self.progress.add_task("trials", total=target, completed=len(finished_trials(study)))
        self.epoch_task = self.progress.add_task(f"epochs ({folds} folds at once)", total=epochs)
        self.epochs = epochs
        self._show_best(study)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        epochs = int(params.get("epochs", self.epochs))
        self.progress.update(self.trials, description=f"trial {number}")
        self.progress.reset(self.epoch_task, total=epochs)

    def epoch_done(self, epoch: int, losses: list[float]) -> None:
        self.progress.update(self.epoch_task, completed=epoch + 1)

    def trial_done(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.progress.update(self.trials, completed=len(finished_trials(study)))
        self._show_best(study)

    def _show_best(self, study: optuna.Study) -> None:
        try:
            best = study.best_trial
        except ValueError:
            return
        self.best.plain = f"best: trial {best.number}, CV {self.metric} {best.value:.4f}  {format_params(best.params)}"


def summary(study: optuna.Study, metric: str) -> Group:
    """One screen: trial counts, the best trial's params, its CV loss, and apart, its CV metrics."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    counts = ", ".join(f"{states.count(s)} {name}" for s, name in names.items())
    parts: list[Any] = [Text(f"\nstudy {study.study_name!r}: {counts} trials")]
    try:
        best = study.best_trial
    except ValueError:
        parts.append(Text("no trial has completed yet"))
        return Group(*parts)
    parts.append(Text(f"best trial: {best.number} (CV mean {metric} {best.value:.4f})", style="bold"))
    params = Table()
    params.add_column("parameter")
    params.add_column("value", justify="right")
    for k, v in best.params.items():
        params.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    loss = Table(title="loss: cross-entropy on the validation folds", title_justify="left", min_width=44)
    loss.add_column("figure")
    loss.add_column("CV mean ± std", justify="right")
    mean, std = best.user_attrs.get(TRIAL_MEAN, {}), best.user_attrs.get(TRIAL_STD, {})
    loss.add_row("loss", mean_std(mean.get("loss"), std.get("loss")))
    metrics = Table(title="metrics on the validation folds", title_justify="left", min_width=44)
    metrics.add_column("metric")
    metrics.add_column("CV mean ± std", justify="right")
    for name in FIGURES[1:]:
        metrics.add_row(name, mean_std(mean.get(name), std.get(name)))
    parts += [params, loss, metrics]
    return Group(*parts)
