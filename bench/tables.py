"""A table as it comes, searched by hpsearch and beside scikit-learn's baselines on the same split.

``python -m bench.tables`` writes palmerpenguins' table (``--data FILE --target COLUMN``: another)
to a folder (``--out``, default a temporary one), runs ``hpsearch study`` on it (``--trials``,
``--folds``, ``--epochs``), ``final-test best``, and then fits two scikit-learn Pipelines of the
same preprocessing (hpsearch's ColumnTransformer, fitted per fold on the training folds) and a
logistic regression or gradient-boosted trees, on the same training split and the same K folds,
scored once on the same test split. It prints each one's CV accuracy (mean ± std over the folds)
and its test accuracy with Wilson's 95% interval: whether an MLP is worth it for that table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

import hpsearch
from hpsearch.analysis.intervals import wilson
from hpsearch.data import load_split
from hpsearch.data.preprocess import preprocessing
from hpsearch.store import load_study, stored_run
from hpsearch.training import make_splits

BASELINES: dict[str, ClassifierMixin] = {
    "logistic regression": LogisticRegression(max_iter=5000),
    "gradient boosting": HistGradientBoostingClassifier(random_state=0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a table file (default: palmerpenguins' penguins.csv)")
    parser.add_argument("--target", default="species", help="its label column")
    parser.add_argument("--out", type=Path, help="folder of the study, the final test and the table")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial: the table below says enough
    out = args.out or Path(tempfile.mkdtemp(prefix="hpsearch-tables-"))
    out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        from palmerpenguins import load_penguins

        data = out / "penguins.csv"
        load_penguins().to_csv(data, index=False)
    storage = f"sqlite:///{out / 'study.db'}"
    options = {"data": str(data), "target": args.target, "folds": args.folds, "epochs": args.epochs}
    hpsearch.run_study(storage=storage, trials=args.trials, **options).close()
    result = hpsearch.final_test(storage, out_dir=out / "final-test")
    doc = result.doc
    rows = [
        (
            f"hpsearch MLP (trial {doc['trial']})",
            doc["metrics"]["cv_mean"]["accuracy"],
            doc["metrics"]["cv_std"]["accuracy"],
            doc["metrics"]["test"]["accuracy"],
            tuple(doc["intervals"]["accuracy_wilson"]),
        )
    ]
    rows += baselines(storage)
    show(rows, doc, out)


def baselines(storage: str) -> list[tuple[str, float, float, float, tuple[float, float]]]:
    """Each baseline's CV accuracy (mean, std over the study's folds) and test accuracy with its interval."""
    defn, _ = stored_run(load_study(storage, None))
    train, test = load_split(defn.data)
    assert train.table is not None and test.table is not None, "a table file"
    splits = make_splits(train.y, defn.cv, train.classes)
    found = []
    for name, model in BASELINES.items():
        pipeline = make_pipeline(preprocessing(train.table.columns), model)
        cv = cross_val_score(pipeline, train.table.frame, train.y, cv=splits, scoring="accuracy")
        predicted = pipeline.fit(train.table.frame, train.y).predict(test.table.frame)
        correct = int((predicted == test.y).sum())
        interval = wilson(correct, len(test.y))
        assert interval is not None
        found.append((name, float(cv.mean()), float(cv.std(ddof=1)), correct / len(test.y), interval))
    return found


def show(rows: list[tuple[str, float, float, float, tuple[float, float]]], doc: dict[str, object], out: Path) -> None:
    data = doc["data"]
    assert isinstance(data, dict)
    table = Table(title=f"{data['name']}: {data['n_train']} training rows, {data['n_test']} test rows")
    for column in ("model", "CV accuracy (mean ± std)", "test accuracy", "95% interval (Wilson)"):
        table.add_column(column)
    for name, mean, std, accuracy, (low, high) in rows:
        table.add_row(name, f"{mean:.4f} ± {std:.4f}", f"{accuracy:.4f}", f"[{low:.4f}, {high:.4f}]")
    console = Console(width=max(Console().width, 100))
    console.print(table)
    console.print(f"study, final test and table in {out}; params of the MLP: {doc['params']}", markup=False)


if __name__ == "__main__":
    main()
