"""The metrics of a validation fold against scikit-learn's, on a real two-class table and on digits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, recall_score, roc_auc_score

from hpsearch.config import metric_names
from hpsearch.training.cv import summarize
from hpsearch.training.metrics import classification_metrics


def _fitted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels, predictions and probabilities of a logistic regression on the second half of the rows."""
    half = len(y) // 2
    model = LogisticRegression(max_iter=2000).fit(x[:half] / x.max(axis=0), y[:half])
    proba = model.predict_proba(x[half:] / x.max(axis=0))
    return y[half:], proba.argmax(axis=1), proba


def test_two_classes_balanced_accuracy_and_roc_auc_are_scikit_learns() -> None:
    data = load_breast_cancer()
    y, pred, proba = _fitted(data.data, data.target)
    figures = classification_metrics(y, pred, 2, proba)
    assert tuple(figures) == metric_names(2)
    assert figures["balanced_accuracy"] == balanced_accuracy_score(y, pred)
    assert figures["roc_auc"] == roc_auc_score(y, proba[:, 1])
    assert figures["balanced_accuracy"] != figures["accuracy"]  # 37% of one class: they differ
    assert "roc_auc" not in classification_metrics(y, pred, 2)  # no probabilities, no ROC AUC
    assert math.isnan(classification_metrics(y[y == 1], pred[y == 1], 2, proba[y == 1])["roc_auc"])


def test_more_classes_have_balanced_accuracy_but_no_roc_auc() -> None:
    digits = load_digits()
    y, pred, proba = _fitted(digits.data + 1.0, digits.target)
    figures = classification_metrics(y, pred, 10, proba)
    assert tuple(figures) == metric_names(10) and "roc_auc" not in figures
    assert figures["balanced_accuracy"] == balanced_accuracy_score(y, pred) == figures["recall"]
    # a class without rows: the mean recall over the classes present, as scikit-learn's, with no warning
    kept = y != 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        balanced = classification_metrics(y[kept], pred[kept], 10, proba[kept])["balanced_accuracy"]
    present = np.unique(y[kept])
    assert balanced == recall_score(y[kept], pred[kept], labels=present, average="macro")
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert balanced == pytest.approx(balanced_accuracy_score(y[kept], pred[kept]))


def test_summarize_leaves_out_a_figure_some_fold_lacks() -> None:
    folds = [{"loss": 0.5, "accuracy": 0.8, "roc_auc": 0.9}, {"loss": 0.7, "accuracy": 0.6}]
    mean, std = summarize(folds)
    assert mean == pytest.approx({"loss": 0.6, "accuracy": 0.7}) and set(std) == {"loss", "accuracy"}
