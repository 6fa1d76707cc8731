"""hpsearch from Python: the pipelines the CLI runs, one function per command.

Each returns what it computed, raises HpsearchError (never exits) and prints only to a console
it is given. ``storage`` is an Optuna storage URL or the path of an SQLite file, as on the CLI.

    import hpsearch
    hpsearch.run_study("studies/default.toml", storage="study.db", trials=20, sets=["cv.folds=3"])
    report = hpsearch.build_report("study.db")          # the report's DataFrames
    result = hpsearch.final_test("study.db", out_dir=Path("final"))
    model = hpsearch.load_model("final/model.safetensors")
    model.predict(x)                                    # class names of raw rows
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import optuna
import pandas as pd
from rich.console import Console

from hpsearch.analysis.final_test import FinalTest, choose_for_test
from hpsearch.analysis.final_test import final_test as run_final_test
from hpsearch.analysis.report import Report
from hpsearch.analysis.report import build_report as _build_report
from hpsearch.config import Definition, RunConfig, load_definition, with_overrides
from hpsearch.config.overrides import apply_sets
from hpsearch.data.inputs import read_inputs
from hpsearch.errors import ConfigError, DataError, StorageError, did_you_mean
from hpsearch.render.final_test import prepare_folder, show_final_test, write_final_test
from hpsearch.render.report_files import write_files
from hpsearch.render.report_text import print_report, to_json
from hpsearch.render.tables import records, rich_table
from hpsearch.search import Outcome, WorkerConfig
from hpsearch.search import run_study as _run_study
from hpsearch.search.objective import Observer
from hpsearch.store import STORAGE_ERRORS, close_storage, first_line, load_study, open_storage, redact, stored_run
from hpsearch.store import storage_url as _url
from hpsearch.store.schema import STATE_WORDS, STUDY_DATA
from hpsearch.training.bundle import LoadedModel, load_bundle

DEFINITIONS = ("default", "fashion-mnist")  # the study definitions shipped in hpsearch/studies/


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
    **options: Any,
) -> RunConfig:
    """The RunConfig of a study: a definition (a Definition, a TOML path, or None: the default),
    then ``sets`` (``section.key=value``), then ``options`` (``with_overrides``: dataset, data,
    target, test_size, folds, epochs, batch_size, metric, sampler, pruner, seed; None: not given).

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
    )


def run_study(
    definition: Definition | RunConfig | str | Path | None = None,
    *,
    storage: str = "sqlite:///study.db",
    trials: int = 50,
    workers: WorkerConfig | None = None,
    observer: Observer | None = None,
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
        **config: further ``run_config`` arguments: study_name, timeout, pruner, device, sets,
            and the options (folds=3, dataset="digits", ...).

    Returns:
        How the run ended; ``outcome.study`` is the Optuna study (still readable).

    Raises:
        HpsearchError: bad data, definition or storage; a definition that differs from the stored one.
        KeyboardInterrupt: on Ctrl-C, after the running trial is marked failed.
    """
    cfg = (
        definition
        if isinstance(definition, RunConfig)
        else run_config(definition, storage=storage, trials=trials, **config)
    )
    outcome = _run_study(cfg, observer, workers)
    outcome.close()  # the connections; the study reconnects when read
    return outcome


def build_report(storage: str, study_name: str | None = None, *, sort: str | None = None) -> Report:
    """A study's report as plain DataFrames (``Report``); writes and prints nothing.

    Raises:
        StorageError: the storage cannot be read, holds no study, or a study not made by hpsearch.
        ConfigError: an unknown study name or sort column.
    """
    study = load_study(_url(str(storage)), study_name)
    defn, data = stored_run(study)
    return _build_report(study, defn, data, sort=sort)


def report(
    url: str,
    study_name: str | None = None,
    *,
    out_dir: Path | None = None,
    top: int = 10,
    sort: str | None = None,
    fmt: Literal["table", "json"] = "table",
    console: Console | None = None,
) -> Report:
    """Build a study's report, write its files, and print it as rich tables or one JSON document.

    Args:
        url: an Optuna storage URL.
        study_name: the study to report; None: the only one in the storage.
        out_dir: folder for the CSV, Markdown, HTML and PNG files; None: ``reports/<study-name>/``
            under the current folder, except with ``fmt="json"``, which then writes no file.
        top: rows of the per-trial tables shown on the terminal (the files hold every trial).
        sort: column of the per-trial tables to order them by; None: the study metric, best first.
        fmt: ``table`` prints rich tables; ``json`` prints the whole report as one JSON document
            and nothing else.
        console: where the tables or the JSON document go; None: nowhere.

    Raises:
        StorageError: the storage cannot be read, holds no study, or a study not made by hpsearch.
        ConfigError: an unknown study name or sort column, or an unwritable folder.
    """
    study = load_study(_url(str(url)), study_name)
    defn, data = stored_run(study)
    built = _build_report(study, defn, data, sort=sort)
    folder = out_dir if out_dir is not None else Path("reports") / study.study_name
    files = [] if fmt == "json" and out_dir is None else write_files(built, study, folder)
    if console is not None and fmt == "json":
        # Console.out neither wraps nor styles, so stdout stays one parseable document.
        console.out(to_json(built, folder if files else None, files), highlight=False)
    elif console is not None:
        print_report(built, console, top=top, folder=folder, files=files)
    return built


def final_test(
    url: str,
    study_name: str | None = None,
    which: str = "best",
    *,
    out_dir: Path | None = None,
    device: str = "auto",
    data: str | None = None,
    console: Console | None = None,
    warn: Console | None = None,
) -> FinalTest:
    """Retrain trial ``which`` (best, simplest or a number) on the training split; score it once on the test split.

    Writes ``model.safetensors`` (see ``load_model``), ``model.pt``, ``final_test.json``, ``per_class.csv``
    and ``confusion_matrix.png`` to ``out_dir`` (default ``reports/<study-name>/final-test/``) and records the
    result on the study.

    Args:
        data: where the study's data are now, if they moved; the fingerprint must match.
        console: where the tables go; None: nowhere.
        warn: where the warning goes when the test split has been used before; None: nowhere.

    Raises:
        HpsearchError: no such storage, study or trial; a trial that is not complete; data whose
            fingerprint differs from the study's; an unwritable folder; a diverging retrain.
    """
    url = _url(str(url))
    chosen = choose_for_test(url, study_name, which, device=device, data=data)
    folder = prepare_folder(out_dir or Path("reports") / chosen.study.study_name / "final-test")
    result = run_final_test(chosen, url, out=str(folder))
    write_final_test(folder, result)
    if console is not None:
        show_final_test(console, result.doc, folder)
    uses = result.doc["n_test_evaluations"]
    if warn is not None and uses > 1:
        warn.print(
            f"warning: the test split of study {result.doc['study']!r} has now been used {uses} times; choosing or "
            "re-choosing a model by test results makes the test figure optimistic, because the test rows then take "
            "part in the choice instead of judging it",
            markup=False,
        )
    return result


def load_model(path: str | Path) -> LoadedModel:
    """Load the model bundle ``final_test`` wrote (``model.safetensors``, or its folder); runs no code from the file.

    Returns:
        ``.module`` (the MLP, logits), ``.predict(x)`` (class names) and ``.predict_proba(x)`` on
        raw rows (pixels as the data set stores them, or a table's unscaled features: the model
        applies its scaler itself), ``.header`` (what it is and where it came from).

    Raises:
        DataError: a missing file, or one that is not an hpsearch model bundle.
    """
    return load_bundle(Path(path))


def predict(model: str | Path | LoadedModel, data: str | Path, *, out: Path | None = None) -> pd.DataFrame:
    """Predict every row of a data file (a table with the model's feature columns, IDX or NPZ images).

    Returns:
        One row per input row: ``row``, ``predicted`` (the class name) and ``p_<class>`` for each class.
        Written as CSV to ``out`` when given.

    Raises:
        DataError: a missing file, or data that do not fit the model (feature names or count, image size).
        ConfigError: ``out`` cannot be written.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    rows = read_inputs(Path(data), loaded.header.input)
    proba = loaded.predict_proba(rows)
    frame = pd.DataFrame({"row": range(len(rows)), "predicted": loaded.predict(rows)})
    frame = pd.concat([frame, pd.DataFrame(proba, columns=[f"p_{c}" for c in loaded.classes])], axis=1)
    if out is not None:
        try:
            frame.to_csv(out, index=False)
        except OSError as e:
            raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    return frame


def export_onnx(model: str | Path | LoadedModel, path: Path) -> Path:
    """Write the model as ONNX: input ``x`` (rows, features) of raw values, as ``predict`` takes
    them; output ``probabilities`` (rows, classes). The preprocessing is in the graph.

    Uses torch's current exporter (``torch.onnx.export(dynamo=True)``, which needs ``onnxscript``:
    ``pip install 'hpsearch[export]'``); the legacy TorchScript exporter is deprecated since torch 2.9.

    Raises:
        ConfigError: the exporter is not installed, or ``path`` cannot be written.
    """
    from hpsearch.training.export import to_onnx

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    to_onnx(loaded, Path(path))
    return Path(path)


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


__all__ = [
    "DataError",
    "build_report",
    "export_onnx",
    "final_test",
    "init_definition",
    "list_studies",
    "load_model",
    "predict",
    "report",
    "run_config",
    "run_study",
]
