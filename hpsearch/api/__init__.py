"""hpsearch from Python: the pipelines the CLI runs, one function per command.

Each returns what it computed, raises HpsearchError (never exits) and prints only to a console
it is given. ``storage`` is an Optuna storage URL or the path of an SQLite file, as on the CLI.

    import hpsearch
    hpsearch.run_study("studies/default.toml", storage="study.db", trials=20, sets=["cv.folds=3"])
    report = hpsearch.build_report("study.db")          # the report's DataFrames
    result = hpsearch.final_test("study.db", out_dir=Path("final"))
    model = hpsearch.load_model("final/model.safetensors")
    model.predict(x)                                    # class names of raw rows

In a notebook, the same study on arrays, as scikit-learn estimators::

    search = hpsearch.MLPSearchCV(params={"epochs": 5}, n_trials=20, cv=5).fit(X, y)
    search.best_estimator_.predict(X_new)               # an hpsearch.MLPClassifier
"""

from hpsearch.api.estimators import MLPClassifier
from hpsearch.api.model import export_onnx, load_model, predict
from hpsearch.api.nested import nested_cv
from hpsearch.api.results import build_report, final_test, report
from hpsearch.api.search_cv import MLPSearchCV
from hpsearch.api.study import DEFINITIONS, init_definition, list_studies, run_config, run_study
from hpsearch.errors import DataError

__all__ = [
    "DEFINITIONS",
    "DataError",
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
]
