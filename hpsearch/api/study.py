"""hpsearch from Python: a study's configuration, running it, the packaged definitions, the studies in a storage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import optuna
import pandas as pd
from rich.console import Console

from hpsearch.config import SHIPPED, Definition, RunConfig, load_definition, with_overrides
from hpsearch.config.overrides import apply_sets
from hpsearch.errors import ConfigError, StorageError, did_you_mean
from hpsearch.render.tables import records, rich_table
from hpsearch.search import Outcome, Rows, WorkerConfig
from hpsearch.search import run_study as _run_study
from hpsearch.search.objective import Observer
from hpsearch.store import STORAGE_ERRORS, close_storage, first_line, open_storage, redact
from hpsearch.store import storage_url as _url
from hpsearch.store.schema import STATE_WORDS, STUDY_DATA

DEFINITIONS = SHIPPED  # the study definitions shipped in hpsearch/studies/


def run_config(
    definition: Definition | str | Path | None = None,
    *,
    storage: str = "sqlite:///study.db",
    study_name: str | None = None,
    trials: int = 50,
    timeout: float | None = None,
    device: Literal["auto", "cpu", "cuda"] = "auto",
    quiet: bool = False,
    sets: Sequence[str] = (),
    models: str | None = None,
    **options: Any,
) -> RunConfig:
    """The RunConfig of a study: a definition (a Definition, a TOML path, or None: the default),
    then ``sets`` (``section.key=value``), then ``options`` (``with_overrides``: dataset, data,
    target, groups, test_size, folds, epochs, batch_size, metric, sampler, pruner, seed; None: not given).

    The study name defaults to the data set's name; a table's is its file's stem.

    Raises:
        ConfigError: a definition, ``--set`` item or option that does not describe a valid study.
    """
    if definition is None:
        base = Definition()
    elif isinstance(definition, Definition):
        base = definition
    else:
        base = load_definition(Path(definition))
    defn = with_overrides(apply_sets(base, sets), **options)
    data = defn.data
    default_name = Path(data.path).stem if data.dataset == "table" and data.path else data.dataset
    return RunConfig(
        definition=defn,
        storage=_url(str(storage)),
        study_name=study_name or default_name,
        trials=trials,
        timeout=timeout,
        device=device,
        quiet=quiet,
        models=models,
    )


def run_study(
    definition: Definition | RunConfig | str | Path | None = None,
    *,
    storage: str = "sqlite:///study.db",
    trials: int = 50,
    workers: WorkerConfig | None = None,
    observer: Observer | None = None,
    rows: Rows | None = None,
    **config: Any,
) -> Outcome:
    """Run (or continue) a study until it holds ``trials`` finished (complete or pruned) trials.

    Args:
        definition: a RunConfig (run as it is), a Definition, the path of a TOML definition, or
            None (the built-in default).
        storage: an Optuna storage URL or an SQLite file's path.
        trials: finished trials the study should hold when the run ends.
        workers: ``--jobs`` and ``--heartbeat``; None: one worker here.
        observer: the live display's hooks; None: silent.
        rows: training rows held in memory and their folds (``hpsearch.MLPSearchCV``, nested CV's outer
            folds); None: the definition's data set's training split.
        **config: further ``run_config`` arguments: study_name, timeout, pruner, device, sets,
            and the options (folds=3, dataset="digits", ...).

    Returns:
        How the run ended; ``outcome.study`` is the Optuna study (still readable).

    Raises:
        HpsearchError: bad data, definition or storage; a definition that differs from the stored one.
        KeyboardInterrupt: on Ctrl-C, after the running trial is marked failed.
    """
    outcome = _run_study(as_run(definition, storage=storage, trials=trials, **config), observer, workers, rows)
    outcome.close()  # the connections; the study reconnects when read
    return outcome


def as_run(definition: Definition | RunConfig | str | Path | None, **config: Any) -> RunConfig:
    """``definition`` if a RunConfig already, else ``run_config(definition, **config)``."""
    return definition if isinstance(definition, RunConfig) else run_config(definition, **config)


def init_definition(name: str = "default", out: Path | None = None) -> Path:
    """Write a packaged study definition (``default`` or ``fashion-mnist``) to edit; returns its path.

    Raises:
        ConfigError: an unknown name, or a file that exists already or cannot be written.
    """
    if name not in DEFINITIONS:
        raise ConfigError(f"unknown study definition {name!r}{did_you_mean(name, DEFINITIONS)}")
    target = out or Path(f"{name}.toml")
    if target.exists():
        raise ConfigError(f"{target} exists already; remove it or give --out FILE")
    text = files("hpsearch").joinpath("studies", f"{name}.toml").read_text(encoding="utf-8")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
    return target


def list_studies(
    storage: str, *, fmt: Literal["table", "json"] = "table", console: Console | None = None
) -> pd.DataFrame:
    """Each study in a storage: its data set, metric, trial counts by state and best value.

    Raises:
        StorageError: the storage cannot be read or holds no study table.
    """
    url = _url(str(storage))
    opened = open_storage(url, read_only=True)
    rows = []
    try:
        for summary in optuna.study.get_all_study_summaries(opened, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=opened)
            trials = study.get_trials(deepcopy=False)
            complete = [t for t in trials if t.value is not None and t.state.name == "COMPLETE"]
            data = study.user_attrs.get(STUDY_DATA) or {}
            best = None
            if complete:
                pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
                best = pick(complete, key=lambda t: float(t.value or 0.0))
            row: dict[str, Any] = {
                "study": summary.study_name,
                "data set": data.get("name"),
                "metric": study.metric_names[0] if study.metric_names else None,
                "trials": len(trials),
            }
            row |= {word: sum(t.state == state for t in trials) for state, word in STATE_WORDS.items()}
            row |= {
                "best trial": None if best is None else best.number,
                "best value": None if best is None else best.value,
            }
            rows.append(row)
    except STORAGE_ERRORS as e:
        raise StorageError(f"cannot read {redact(url)}: {first_line(e)}") from None
    finally:
        close_storage(opened)
    frame = pd.DataFrame(
        rows, columns=["study", "data set", "metric", "trials", *STATE_WORDS.values(), "best trial", "best value"]
    )
    if console is not None and fmt == "json":
        console.out(json.dumps(records(frame), allow_nan=False), highlight=False)
    elif console is not None:
        # the terminal shows the states some trial is in; the JSON document keeps every count
        idle = [w for w in STATE_WORDS.values() if w != "complete" and not frame[w].any()]
        shown = frame.drop(columns=["trials", *idle]).assign(**{"best value": frame["best value"].round(4)})
        console.print(rich_table(shown, f"studies in {redact(url)}"))
    return frame
