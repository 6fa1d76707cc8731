"""A model's figures on the test split: loss apart from the metrics, per class, confusion, 95% intervals.

``score`` evaluates one MLP; ``scores_of`` takes what any model gave (its loss, predictions,
probabilities and per-row losses: a fold-ensemble's are its members' mean probabilities), so
that every final model is scored by the same code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.compose import ColumnTransformer
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from hpsearch.analysis.final_record import Scores
from hpsearch.analysis.intervals import bootstrap, wilson
from hpsearch.data import Dataset, preprocess
from hpsearch.training import as_tensors, classification_metrics, evaluate


def score(model: nn.Module, test: Dataset, prep: ColumnTransformer | None, *, seed: int = 0) -> Scores:
    """Evaluate ``model`` once on the test split (a table's through ``prep``, fitted on the training
    split): loss, metrics, per-class table, confusion matrix, and each figure's 95% interval (a
    bootstrap over the test rows seeded by ``seed``)."""
    x = test.x if prep is None or test.table is None else preprocess.inputs(prep, test.table)
    xt, yt = as_tensors(x, test.y, str(next(model.parameters()).device))
    loss, pred, proba = evaluate(model, xt, yt)
    return scores_of(loss, pred, proba, _row_losses(model, xt, yt), test, seed=seed)


def scores_of(
    loss: float, pred: np.ndarray, proba: np.ndarray, row_loss: np.ndarray, test: Dataset, *, seed: int
) -> Scores:
    """Every test figure from a model's loss, predictions, probabilities and per-row losses on the test split."""
    labels = np.arange(test.n_classes)  # every class, so one never predicted still gets its row
    precision, recall, f1, support = precision_recall_fscore_support(
        test.y, pred, labels=labels, average=None, zero_division=0
    )
    per_class = [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(test.classes, precision, recall, f1, support, strict=True)
    ]
    confusion = confusion_matrix(test.y, pred, labels=labels)
    intervals = bootstrap(test.y, pred, row_loss, test.n_classes, proba, seed=seed)
    correct = wilson(int((pred == test.y).sum()), len(test.y))
    metrics = classification_metrics(test.y, pred, test.n_classes, proba)
    return Scores(loss, metrics, per_class, confusion, intervals, correct)


@torch.no_grad()
def _row_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    was_training = model.training
    model.eval()
    losses = F.cross_entropy(model(x), y, reduction="none").cpu().numpy()
    model.train(was_training)
    return np.asarray(losses, dtype=np.float64)
