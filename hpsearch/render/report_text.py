"""The report on the terminal (rich tables) or as one JSON document, and the sections both share."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.text import Text

from hpsearch.analysis.report import Report
from hpsearch.render.choice import choice_json, choice_sentences
from hpsearch.render.tables import cell, display, native, records, rich_table
from hpsearch.text import format_params, missing

TITLES = {
    "summary": "Summary",
    "loss": "Loss: cross-entropy on the validation folds, CV mean ± std per trial",
    "metrics": "Metrics on the validation folds, CV mean ± std per trial",
    "best_trial_folds": "Best trial, fold by fold (validation folds)",
    "comparison": "Is the best really the best? The top trials against the best on the same folds",
    "importances": "Parameter importances (fANOVA over the complete trials)",
    "learning_curves": "Learning curves: mean validation score over the folds after each epoch",
    "final_test": "Final test: results on the TEST split, not cross-validation",
}


def print_report(report: Report, console: Console, *, top: int, folder: Path, files: list[Path]) -> None:
    """The report as rich tables: the summary, then the first ``top`` trials, then the rest."""
    console.print(rich_table(display(report.summary, ()), f"Study {report.study_name!r}"))
    n = len(report.loss)
    for stem in ("loss", "metrics"):
        shown = display(getattr(report, stem).head(top), report.params, short=True)
        if stem == "metrics":  # same trials in the same order as the loss table, which shows the params
            shown = shown.drop(columns="params", errors="ignore")
        console.print(rich_table(shown, f"{TITLES[stem]}: {len(shown)} of {n} trials by {report.ordered_by}"))
    for stem, title, df, sentences in sections(report):
        if stem in ("summary", "loss", "metrics", "learning_curves"):
            continue  # shown above, cut to the top rows; the curves are a picture in the files
        if stem == "final_test" and report.final_test is not None:
            _print_final_tests(report.final_test, report.params, report.figures, console, title)
        elif df is not None:
            console.print(rich_table(df, title))
        for sentence in sentences:
            console.print(Text(sentence, style="bold" if stem == "final_test" else ""))
    counts = f"{sum(p.suffix == '.csv' for p in files)} CSV, {sum(p.suffix == '.png' for p in files)} PNG"
    console.print(Text(f"report written to {folder}/ (report.html, report.md, {counts})"))


def _print_final_tests(
    tests: pd.DataFrame, params: tuple[str, ...], figures: tuple[str, ...], console: Console, title: str
) -> None:
    """One narrow table per final test: each figure, its value and its 95% interval."""
    console.print(Text(title, style="bold"))
    for row in tests.to_dict(orient="records"):
        chosen = format_params({p: row[p] for p in params if not missing(row.get(p))})
        rows = [
            [name, cell(row[f"test_{name}"]), cell(row[f"test_{name}_ci_low"]), cell(row[f"test_{name}_ci_high"])]
            for name in figures
        ]
        frame = pd.DataFrame(rows, columns=["figure", "test", "95% low", "95% high"])
        heading = f"run {row['run']}: trial {row['trial']} ({chosen}), {row['created']}"
        console.print(rich_table(frame, heading))


def to_json(report: Report, folder: Path | None, files: list[Path]) -> str:
    """The whole report as one JSON document; missing and non-finite figures are null.

    ``folder`` None: no files were written (``out_dir`` is null)."""
    tables = report.tables()
    doc = {
        "study": report.study_name,
        "metric": report.metric,
        "direction": report.direction,
        "ordered_by": report.ordered_by,
        "summary": {str(item): native(value) for item, value in report.summary.itertuples(index=False)},
        **{stem: records(tables[stem]) if stem in tables else None for stem in list(TITLES)[1:]},
        "choice": choice_json(report.choice),
        "test_evaluations": report.test_evaluations,
        "notes": report.notes,
        "out_dir": None if folder is None else str(folder),
        "files": [p.name for p in files],
    }
    return json.dumps(doc, allow_nan=False)


def _test_note(report: Report) -> str:
    n = report.test_evaluations
    note = f"These are test-split results; final-test has used the test split {n} time{'s' * (n != 1)}."
    if n > 1:
        note += " Choosing a model by them would tune it to the test split: report them, do not select by them."
    return note


def sections(report: Report) -> list[tuple[str, str, pd.DataFrame | None, list[str]]]:
    """(stem, title, display table or None, sentences) for every section to show, in order."""
    tables = report.tables()
    sections: list[tuple[str, str, pd.DataFrame | None, list[str]]] = []
    for stem, title in TITLES.items():
        if stem == "final_test" and stem not in tables:
            continue  # never tested: the test split stays out of the report
        if stem == "learning_curves":  # a picture; its rows (trials x epochs) are in learning_curves.csv
            if stem in tables:
                sentences = [
                    "Complete and pruned trials drawn apart; a pruned trial's curve ends where it was stopped."
                ]
                sections.append((stem, title, None, sentences))
            continue
        sentences = [report.notes[stem]] if stem in report.notes else []
        if stem in ("loss", "metrics"):
            sentences.append(f"Ordered by {report.ordered_by}; pruned trials show the folds they reached.")
        if stem == "comparison":
            sentences += choice_sentences(report)
        if stem == "best_trial_folds" and report.best_folds is not None and len(report.best_folds):
            title = f"{title}: trial {report.best_folds['trial'].iloc[0]}"
        if stem == "final_test":
            sentences.insert(0, _test_note(report))
        df = tables.get(stem)
        sections.append((stem, title, None if df is None else display(df, report.params), sentences))
    return sections
