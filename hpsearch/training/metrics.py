"""Evaluation metrics from true and predicted classes (and, for ROC AUC, probabilities); the loss never enters here."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, recall_score, roc_auc_score


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, proba: np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy, macro-averaged precision, recall and F1 over all ``n_classes`` classes, balanced
    accuracy, and for two classes ROC AUC.

    A class that is never predicted has precision 0 (not a warning), so a model that ignores
    a class is penalised rather than excused. Balanced accuracy is scikit-learn's
    ``balanced_accuracy_score``: the mean recall over the classes that have rows in ``y_true``
    (taken from ``recall_score``, which does not warn where a prediction names a class without
    rows); it equals the macro recall whenever every class has rows. ROC AUC is
    ``roc_auc_score`` of the predicted probability of class 1, NaN when ``y_true`` holds one class.

    Args:
        y_true, y_pred: true and predicted class of each row.
        n_classes: every class counts in the macro averages.
        proba: (rows, classes) predicted probabilities; ROC AUC needs them and two classes.
    """
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(n_classes), average="macro", zero_division=0
    )
    present = np.unique(y_true)
    figures = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "balanced_accuracy": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }
    if n_classes == 2 and proba is not None:
        figures["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1])) if len(present) == 2 else math.nan
    return figures
