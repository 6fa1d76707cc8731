"""Terminal output of ``hpsearch study``: a live progress display and the closing summary."""

from __future__ import annotations

import time
from typing import Any

import optuna
import pandas as pd
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
from rich.text import Text

from hpsearch.config import METRIC_NAMES
from hpsearch.render.tables import rich_table
from hpsearch.search import finished_trials
from hpsearch.search.race import folds_words
from hpsearch.store.schema import STATE_WORDS, TRIAL_MEAN, TRIAL_STD
from hpsearch.text import format_params, format_value, mean_std


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
        self.epoch_task = self.progress.add_task(f"epochs ({folds_words(range(folds))})", total=epochs)
        self.epochs = epochs
        self._show_best(study)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        epochs = int(params.get("epochs", self.epochs))
        self.progress.update(self.trials, description=f"trial {number}")
        self.progress.reset(self.epoch_task, total=epochs)

    def epoch_done(self, epoch: int, losses: list[float], folds: list[int]) -> None:
        # the folds training now: all K, or the race's wave (folds 1-2, then 3-4, then 5)
        self.progress.update(self.epoch_task, completed=epoch + 1, description=f"epochs ({folds_words(folds)})")

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
    shown = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    counts = ", ".join(f"{states.count(s)} {STATE_WORDS[s]}" for s in shown)
    parts: list[Any] = [Text(f"\nstudy {study.study_name!r}: {counts} trials")]
    try:
        best = study.best_trial
    except ValueError:
        parts.append(Text("no trial has completed yet"))
        return Group(*parts)
    parts.append(Text(f"best trial: {best.number} (CV mean {metric} {best.value:.4f})", style="bold"))
    params = [(k, format_value(v)) for k, v in best.params.items()]
    mean, std = best.user_attrs.get(TRIAL_MEAN, {}), best.user_attrs.get(TRIAL_STD, {})
    loss = [("loss", mean_std(mean.get("loss"), std.get("loss")))]
    metrics = [(name, mean_std(mean[name], std.get(name))) for name in METRIC_NAMES if name in mean]
    parts += [
        rich_table(pd.DataFrame(params, columns=["parameter", "value"])),
        rich_table(
            pd.DataFrame(loss, columns=["figure", "CV mean ± std"]), "loss: cross-entropy on the validation folds"
        ),
        rich_table(pd.DataFrame(metrics, columns=["metric", "CV mean ± std"]), "metrics on the validation folds"),
    ]
    return Group(*parts)
