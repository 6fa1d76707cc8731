"""Render a Report: rich tables, one JSON document, and files: CSV, PNG, Markdown, HTML.

Every function here formats or draws what ``report.build_report`` computed; none reads a
figure the Report does not hold, except the optimization history, which Optuna draws from
the study's trial values. The HTML is one self-contained file: its pictures are embedded as
data URIs and it loads nothing from elsewhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hpsearch.errors import ConfigError
from hpsearch.report_choose import choice_json, choice_sentences, draw_choice
from hpsearch.text import format_params, mean_std

if TYPE_CHECKING:
    from hpsearch.report import Report

_TITLES = {
    "summary": "Summary",
    "loss": "Loss: cross-entropy on the validation folds, CV mean ± std per trial",
    "metrics": "Metrics on the validation folds, CV mean ± std per trial",
    "best_trial_folds": "Best trial, fold by fold (validation folds)",
    "comparison": "Is the best really the best? The top trials against the best on the same folds",
    "importances": "Parameter importances (fANOVA over the complete trials)",
    "final_test": "Final test: results on the TEST split, not cross-validation",
}
_OPTIONAL_FILES = {  # written only when their section exists; a stale copy would mislead
    "best_trial_folds.csv",
    "comparison.csv",
    "top_trials.png",
    "pareto.png",
    "importances.csv",
    "final_test.csv",
    "history.png",
    "importances.png",
    "metric_vs_width.png",
    "metric_vs_depth.png",
}
_TERMINAL_HIDES = ("n_params", "duration_s", "reason")  # kept in the files, too wide for a terminal
_NUMBER = re.compile(r"^-?[\d.]+(e[+-]?\d+)?( ± [\d.]+)?$")
_CSS = """body{font-family:system-ui,sans-serif;color:#222;max-width:75rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left;white-space:nowrap}
th{background:#f3f3f3}.wide{overflow-x:auto}
section.test{border:2px solid #c60;background:#fff8f0;padding:0 1rem;margin-top:2rem}
figure{margin:1rem 0}img{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}"""

Pictures = dict[str, list[tuple[str, str]]]  # section -> [(PNG file name, caption)]


def write_files(report: Report, study: optuna.Study, folder: Path) -> list[Path]:
    """Write one CSV per table, the PNG pictures, ``report.md`` and a self-contained ``report.html``.

    Returns:
        The files written, CSV first.

    Raises:
        ConfigError: the folder cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for stem, df in report.tables().items():
            df.to_csv(folder / f"{stem}.csv", index=False)
            written.append(folder / f"{stem}.csv")
        pictures = _draw(report, study, folder)
        written += [folder / name for entries in pictures.values() for name, _ in entries]
        (folder / "report.md").write_text(_markdown(report, pictures), encoding="utf-8")
        (folder / "report.html").write_text(_html(report, pictures, folder), encoding="utf-8")
        written += [folder / "report.md", folder / "report.html"]
        for name in _OPTIONAL_FILES - {p.name for p in written}:
            (folder / name).unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write the report to {folder}: {e.strerror or e}") from None
    return written


def print_report(report: Report, console: Console, *, top: int, folder: Path, files: list[Path]) -> None:
    """The report as rich tables: the summary, then the first ``top`` trials, then the rest."""
    console.print(_table(_display(report.summary, ()), f"Study {report.study_name!r}"))
    n = len(report.loss)
    for stem in ("loss", "metrics"):
        shown = _display(getattr(report, stem).head(top), report.params, short=True)
        if stem == "metrics":  # same trials in the same order as the loss table, which shows the params
            shown = shown.drop(columns="params", errors="ignore")
        console.print(_table(shown, f"{_TITLES[stem]}: {len(shown)} of {n} trials by {report.ordered_by}"))
    for stem, title, df, sentences in _sections(report):
        if stem in ("summary", "loss", "metrics"):
            continue  # shown above, cut to the top rows
        if df is not None:
            console.print(_table(df, title))
        for sentence in sentences:
            console.print(Text(sentence, style="bold" if stem == "final_test" else ""))
    counts = f"{sum(p.suffix == '.csv' for p in files)} CSV, {sum(p.suffix == '.png' for p in files)} PNG"
    console.print(Text(f"report written to {folder}/ (report.html, report.md, {counts})"))


def to_json(report: Report, folder: Path, files: list[Path]) -> str:
    """The whole report as one JSON document; missing and non-finite figures are null."""
    tables = report.tables()
    doc = {
        "study": report.study_name,
        "metric": report.metric,
        "direction": report.direction,
        "ordered_by": report.ordered_by,
        "summary": {str(item): _native(value) for item, value in report.summary.itertuples(index=False)},
        **{stem: _records(tables[stem]) if stem in tables else None for stem in list(_TITLES)[1:]},
        "choice": choice_json(report.choice),
        "test_evaluations": report.test_evaluations,
        "notes": report.notes,
        "out_dir": str(folder),
        "files": [p.name for p in files],
    }
    return json.dumps(doc, allow_nan=False)


# --- tables for people ------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def _native(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if _missing(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None  # JSON has no NaN or inf
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _native(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _cell(value: Any) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return str(value)


def _display(df: pd.DataFrame, params: tuple[str, ...], *, short: bool = False) -> pd.DataFrame:
    """Strings for people: ``mean ± std`` in one column, the parameters on one line."""
    columns: dict[str, list[str]] = {}
    names = [str(c) for c in df.columns]
    for col in names:
        base = col.removesuffix("_mean").removesuffix("_std")
        paired = f"{base}_mean" in names and f"{base}_std" in names
        if paired and col.endswith("_mean"):
            columns[base] = [mean_std(m, s) for m, s in zip(df[col], df[f"{base}_std"], strict=True)]
        elif col in params and "params" not in columns:
            rows = df[[p for p in params if p in names]].to_dict(orient="records")
            columns["params"] = [format_params({str(k): v for k, v in r.items() if not _missing(v)}) for r in rows]
        elif not (paired or col in params or (short and col in _TERMINAL_HIDES)):
            columns[col] = [_cell(v) for v in df[col]]
    return pd.DataFrame(columns, dtype=object)


def _table(df: pd.DataFrame, title: str) -> Table:
    table = Table(title=Text(title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD)
    for col in df.columns:
        numeric = all(_NUMBER.match(str(c)) or c == "–" for c in df[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for row in df.itertuples(index=False):
        table.add_row(*(str(c) for c in row))
    return table


def _test_note(report: Report) -> str:
    n = report.test_evaluations
    note = f"These are test-split results; final-test has used the test split {n} time{'s' * (n != 1)}."
    if n > 1:
        note += " Choosing a model by them would tune it to the test split: report them, do not select by them."
    return note


def _sections(report: Report) -> list[tuple[str, str, pd.DataFrame | None, list[str]]]:
    """(stem, title, display table or None, sentences) for every section to show, in order."""
    tables = report.tables()
    sections = []
    for stem, title in _TITLES.items():
        if stem == "final_test" and stem not in tables:
            continue  # never tested: the test split stays out of the report
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
        sections.append((stem, title, None if df is None else _display(df, report.params), sentences))
    return sections


# --- pictures -----------------------------------------------------------------------------


def _draw(report: Report, study: optuna.Study, folder: Path) -> Pictures:
    """Draw the PNGs; return them by the section they illustrate."""
    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    per_trial = "loss" if report.metric == "loss" else "metrics"
    pictures: Pictures = {per_trial: [], "importances": [], "comparison": draw_choice(report, folder)}
    frame = getattr(report, per_trial)
    done = frame[frame["state"] == "complete"]
    if done.empty:
        return pictures
    # Optuna's plots are marked experimental and set a global style: keep both to this call.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_optimization_history(study, target_name=f"CV mean {report.metric}")
        figure = ax.get_figure(root=True)
        assert figure is not None  # an Axes Optuna drew always sits on a figure
        figure.savefig(folder / "history.png", dpi=100, bbox_inches="tight")
        plt.close(figure)
    pictures[per_trial].append(("history.png", f"Optimization history: CV mean {report.metric} by trial"))
    for param in ("width", "depth"):
        if param in report.params:
            _against(done, report.metric, param).savefig(folder / f"metric_vs_{param}.png", dpi=100)
            caption = f"CV mean {report.metric} ± std against {param} (complete trials)"
            pictures[per_trial].append((f"metric_vs_{param}.png", caption))
    if report.importances is not None:
        _importance_bars(report.importances, report.metric).savefig(folder / "importances.png", dpi=100)
        pictures["importances"].append(("importances.png", f"Parameter importances for CV mean {report.metric}"))
    return pictures


def _against(done: pd.DataFrame, metric: str, param: str) -> Figure:
    fig = Figure(figsize=(6, 4), layout="constrained")  # not pyplot's: nothing to close
    ax = fig.subplots()
    std = pd.to_numeric(done[f"{metric}_std"], errors="coerce").fillna(0.0)
    ax.errorbar(done[param].astype(float), done[f"{metric}_mean"].astype(float), yerr=std, fmt="o", capsize=3)
    if param == "width":
        ax.set_xscale("log", base=2)  # widths are searched on a log scale
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=param, ylabel=f"CV mean {metric} ± std", title=f"{metric} against {param}")
    ax.grid(alpha=0.3)
    return fig


def _importance_bars(importances: pd.DataFrame, metric: str) -> Figure:
    # Drawn from the table rather than by Optuna's plot, which would run fANOVA again.
    fig = Figure(figsize=(6, 1 + 0.45 * len(importances)), layout="constrained")
    ax = fig.subplots()
    ax.barh(importances["param"][::-1], importances["importance"][::-1], color="tab:blue")
    ax.set(xlabel="importance (fANOVA, sums to 1)", title=f"Parameter importances for CV mean {metric}")
    return fig


# --- files for people -----------------------------------------------------------------------


def _markdown_table(df: pd.DataFrame) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [row([str(c) for c in df.columns]), row(["---"] * len(df.columns))]
    lines += [row([str(c) for c in r]) for r in df.itertuples(index=False)]
    return "\n".join(lines)


def _markdown(report: Report, pictures: Pictures) -> str:
    parts = [f"# hpsearch report: study `{report.study_name}`"]
    for stem, title, df, sentences in _sections(report):
        parts.append(f"## {title}")
        parts += sentences
        if df is not None:
            parts.append(_markdown_table(df))
        parts += [f"![{caption}]({name})" for name, caption in pictures.get(stem, [])]
    return "\n\n".join(parts) + "\n"


def _html(report: Report, pictures: Pictures, folder: Path) -> str:
    name = html.escape(report.study_name)
    body = [f"<h1>hpsearch report: study {name}</h1>"]
    for stem, title, df, sentences in _sections(report):
        css = ' class="test"' if stem == "final_test" else ""
        body.append(f'<section id="{stem}"{css}><h2>{html.escape(title)}</h2>')
        body += [f"<p>{html.escape(s)}</p>" for s in sentences]
        if df is not None:
            body.append(f'<div class="wide">{df.to_html(index=False, border=0, escape=True)}</div>')
        for file, caption in pictures.get(stem, []):
            data = base64.b64encode((folder / file).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        body.append("</section>")
    head = f'<meta charset="utf-8"><title>hpsearch report: {name}</title><style>{_CSS}</style>'
    return f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>\n' + "\n".join(body) + "\n</body></html>\n"
