"""The report's files: one CSV per table, the PNG pictures, ``report.md`` and a self-contained ``report.html``.

Every function here formats or draws what ``analysis.report.build_report`` computed; none reads
a figure the Report does not hold, except the optimization history, which Optuna draws from the
study's trial values. The HTML is one file: its pictures are embedded as data URIs and it loads
nothing from elsewhere.
"""

from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path

import matplotlib
import optuna
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from hpsearch.analysis.report import Report
from hpsearch.errors import ConfigError
from hpsearch.render.choice import draw_choice
from hpsearch.render.report_text import sections

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
    "learning_curves.csv",
    "learning_curves.png",
}
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


def _draw(report: Report, study: optuna.Study, folder: Path) -> Pictures:
    """Draw the PNGs; return them by the section they illustrate."""
    import matplotlib.pyplot as plt  # Optuna's history plot draws with pyplot: the caller's backend, closed at once
    from optuna.visualization.matplotlib import plot_optimization_history

    per_trial = "loss" if report.metric == "loss" else "metrics"
    pictures: Pictures = {per_trial: [], "importances": [], "comparison": draw_choice(report, folder)}
    if report.curves is not None:
        _curves(report.curves, report.metric).savefig(folder / "learning_curves.png", dpi=100)
        caption = f"Mean validation {report.metric} after each epoch: complete trials (left), pruned (right)"
        pictures["learning_curves"] = [("learning_curves.png", caption)]
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


def _curves(curves: pd.DataFrame, metric: str) -> Figure:
    """Complete and pruned trials side by side, one line per trial, on one scale."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)  # one scale: a pruned curve ends where it was stopped
    for ax, state in zip(axes, ("complete", "pruned"), strict=True):
        shown = curves[curves["state"] == state]
        for _, trial in shown.groupby("trial"):
            ax.plot(
                trial["epoch"],
                trial["value"],
                marker=".",
                alpha=0.7,
                color="tab:blue" if state == "complete" else "tab:red",
            )
        n = shown["trial"].nunique()
        ax.set(xlabel="epoch", title=f"{state} trials ({n})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean validation {metric} over the folds")
    return fig


def _importance_bars(importances: pd.DataFrame, metric: str) -> Figure:
    # Drawn from the table rather than by Optuna's plot, which would run fANOVA again.
    fig = Figure(figsize=(6, 1 + 0.45 * len(importances)), layout="constrained")
    ax = fig.subplots()
    ax.barh(importances["param"][::-1], importances["importance"][::-1], color="tab:blue")
    ax.set(xlabel="importance (fANOVA, sums to 1)", title=f"Parameter importances for CV mean {metric}")
    return fig


def _markdown_table(df: pd.DataFrame) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [row([str(c) for c in df.columns]), row(["---"] * len(df.columns))]
    lines += [row([str(c) for c in r]) for r in df.itertuples(index=False)]
    return "\n".join(lines)


def _markdown(report: Report, pictures: Pictures) -> str:
    parts = [f"# hpsearch report: study `{report.study_name}`"]
    for stem, title, df, sentences in sections(report):
        parts.append(f"## {title}")
        parts += sentences
        if df is not None:
            parts.append(_markdown_table(df))
        parts += [f"![{caption}]({name})" for name, caption in pictures.get(stem, [])]
    return "\n\n".join(parts) + "\n"


def _html(report: Report, pictures: Pictures, folder: Path) -> str:
    name = html.escape(report.study_name)
    body = [f"<h1>hpsearch report: study {name}</h1>"]
    for stem, title, df, sentences in sections(report):
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
