"""hpsearch: MLP hyperparameter search with Optuna, every trial scored by K-fold cross-validation.

From Python (the same functions the CLI runs; see ``hpsearch.api``)::

    import hpsearch
    hpsearch.run_study(None, storage="study.db", trials=10, dataset="digits", folds=3)
    hpsearch.build_report("study.db")                 # the report's DataFrames
    hpsearch.final_test("study.db")                   # retrain the best, score it on the test split
    hpsearch.load_model("reports/digits/final-test")  # .predict(x), .predict_proba(x), .module
    hpsearch.MLPSearchCV(n_trials=10, cv=3).fit(X, y)  # the same study on arrays, a scikit-learn estimator

The names are imported on first use, so ``import hpsearch`` (and ``hpsearch --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpsearch.version import __version__

_API = (
    "MLPClassifier",
    "MLPSearchCV",
    "build_report",
    "export_onnx",
    "final_test",
    "init_definition",
    "list_studies",
    "load_model",
    "nested_cv",
    "predict",
    "report",
    "run_config",
    "run_study",
)
__all__ = [
    "MLPClassifier",
    "MLPSearchCV",
    "__version__",
    "build_report",
    "export_onnx",
    "final_test",
    "init_definition",
    "list_studies",
    "load_model",
    "nested_cv",
    "predict",
    "report",
    "run_config",
    "run_study",
]

if TYPE_CHECKING:
    from hpsearch.api import (
        MLPClassifier,
        MLPSearchCV,
        build_report,
        export_onnx,
        final_test,
        init_definition,
        list_studies,
        load_model,
        nested_cv,
        predict,
        report,
        run_config,
        run_study,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from hpsearch import api

        return getattr(api, name)
    raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")
