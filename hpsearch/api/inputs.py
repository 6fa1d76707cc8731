"""What the scikit-learn estimators take: ``X`` and ``y`` checked as scikit-learn checks them, then read as a table.

scikit-learn's ``validate_data`` does the checks every estimator owes its caller (2-D rows, no sparse
or complex data, the same number and names of features in ``predict`` as in ``fit``); the rows then go
on as a DataFrame, raw, so that a DataFrame's text columns and missing values reach hpsearch's table
reading (``data.arrays``). A numpy array's columns are named ``x0``, ``x1``, ...
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from hpsearch.data.arrays import column_names


def training_rows(estimator: BaseEstimator, X: Any, y: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` as a DataFrame of raw feature columns and ``y`` as class indices; sets ``n_features_in_``,
    ``feature_names_in_`` (a DataFrame's string column names) and ``classes_`` (``y``'s sorted labels).

    Raises:
        ValueError: rows scikit-learn refuses (1-D, empty, infinite, a regression target), or a single class.
    """
    frame = isinstance(X, pd.DataFrame)
    checked, labels = validate_data(
        estimator, X, y, dtype=None if frame else "numeric", ensure_all_finite="allow-nan", reset=True
    )
    check_classification_targets(labels)
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs two classes or more to learn, but y holds one class ({classes[0]!r})"
        )
    estimator.classes_ = classes
    return _as_frame(estimator, X if frame else checked), np.asarray(codes, dtype=np.int64)


def new_rows(estimator: BaseEstimator, X: Any) -> pd.DataFrame:
    """``X`` checked against what the fitted ``estimator`` saw in ``fit``, as a DataFrame of its feature columns.

    Raises:
        NotFittedError: ``fit`` has not run.
        ValueError: rows of another number of features, or of other feature names.
    """
    check_is_fitted(estimator)
    frame = isinstance(X, pd.DataFrame)
    checked = validate_data(
        estimator, X, dtype=None if frame else "numeric", ensure_all_finite="allow-nan", reset=False
    )
    return _as_frame(estimator, X if frame else checked)


def class_names(classes: np.ndarray) -> tuple[str, ...]:
    """The labels ``classes_`` as the names a model bundle stores."""
    return tuple(str(c) for c in classes)


def _as_frame(estimator: BaseEstimator, X: Any) -> pd.DataFrame:
    """The feature columns by the names ``fit`` saw: a DataFrame's string names, else ``x0``, ``x1``, ..."""
    names = list(getattr(estimator, "feature_names_in_", column_names(estimator.n_features_in_)))
    if isinstance(X, pd.DataFrame):
        return X.set_axis(names, axis=1).reset_index(drop=True)
    return pd.DataFrame(np.asarray(X), columns=names)
