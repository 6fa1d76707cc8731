"""hpsearch from Python: what a study found (the report) and how good it is (the final test)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rich.console import Console

from hpsearch.analysis.final_test import FinalTest, choose_for_test
from hpsearch.analysis.final_test import final_test as run_final_test
from hpsearch.analysis.report import Report
from hpsearch.analysis.report import build_report as _build_report
from hpsearch.render.final_test import prepare_folder, show_final_test, write_final_test
from hpsearch.render.report_files import write_files
from hpsearch.render.report_text import print_report, to_json
from hpsearch.store import load_study, stored_run
from hpsearch.store import storage_url as _url


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
    models: str | None = None,
    console: Console | None = None,
    warn: Console | None = None,
) -> FinalTest:
    """Retrain trial ``which`` (best, simplest or a number) on the training split; score it once on the test split.

    Writes ``model.safetensors`` (see ``load_model``), ``model.pt``, ``final_test.json``, ``per_class.csv``
    and ``confusion_matrix.png`` to ``out_dir`` (default ``reports/<study-name>/final-test/``) and records the
    result on the study.

    Args:
        data: where the study's data are now, if they moved; the fingerprint must match.
        models: a fold-ensemble study's kept fold-models, where ``study --models`` put them (default: beside
            an SQLite file, else ./hpsearch-models).
        console: where the tables go; None: nowhere.
        warn: where the warning goes when the test split has been used before; None: nowhere.

    Raises:
        HpsearchError: no such storage, study or trial; a trial that is not complete; data whose
            fingerprint differs from the study's; an unwritable folder; a diverging retrain.
    """
    url = _url(str(url))
    chosen = choose_for_test(url, study_name, which, device=device, data=data, models=models)
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
