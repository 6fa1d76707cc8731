"""The training loops bench/speed.py times side by side, each one call that returns what it measured.

Per-epoch loops train one epoch of the issue's MLP (784-512-512-10, Adam, lr 1e-3) on the same
rows; their times are per model. Trial loops do one 5-fold cross-validation, hpsearch's and
skorch's, and return the mean validation accuracy beside the time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hpsearch.config import TrainConfig
from hpsearch.data import Dataset
from hpsearch.training import Split, build_mlp, cross_validate, fit, fit_folds, fit_stacked, layer_sizes

DEPTH, WIDTH, LR = 2, 512, 1e-3  # the MLP and optimizer
FOLDS = 5
# fit_folds runs 2 epochs in the per-epoch table: one epoch of 5 fold-models on 2 threads leaves
# a thread idle for the last model, which no trial of 2 or more epochs does
FOLDS_EPOCHS = 2


def config(batch: int, epochs: int = 1) -> TrainConfig:
    """The TrainConfig of every hpsearch loop here."""
    return TrainConfig(depth=DEPTH, width=WIDTH, optimizer="adam", lr=LR, batch_size=batch, epochs=epochs)


def timed(run: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def gemm_epoch(x: torch.Tensor, batch: int, models: int = 1) -> float:
    """Seconds per model of the matrix products alone of one epoch: forward and backward, no rest.

    ``models`` > 1: as many models side by side, one thread each with one torch thread, the way
    hpsearch trains fold-models on a CPU; the products of one thread are those of one model.
    """
    sizes = layer_sizes(x.shape[1], 10, DEPTH, WIDTH)
    batches = x.tensor_split(-(-len(x) // batch))

    def one_model() -> None:
        weights = [torch.randn(b, a) * 0.05 for a, b in pairwise(sizes)]
        grads = [torch.empty_like(w) for w in weights]
        outs = [torch.empty(batch, s) for s in sizes]
        backs = [torch.empty(batch, s) for s in sizes]
        for xb in batches:
            n, acts = len(xb), [xb]
            for i, w in enumerate(weights):  # forward: h_i = h_{i-1} W_i^T
                acts.append(torch.mm(acts[-1], w.T, out=outs[i + 1][:n]))
            d = acts[-1]
            for i in reversed(range(len(weights))):  # backward: dW_i = d^T h_{i-1}; d <- d W_i
                torch.mm(d.T, acts[i], out=grads[i])
                if i > 0:
                    d = torch.mm(d, weights[i], out=backs[i][:n])

    if models == 1:
        return timed(one_model)

    def side_by_side() -> None:
        threads = [threading.Thread(target=one_model) for _ in range(models)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return timed(side_by_side) / models
    finally:
        torch.set_num_threads(before)


def tutorial_epoch(x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """Seconds of one epoch of the PyTorch tutorial loop: DataLoader, nn.Sequential, autograd, Adam."""
    model = nn.Sequential(nn.Linear(784, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)

    def epoch() -> None:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return timed(epoch)


def fit_epoch(x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """Seconds of one epoch of ``hpsearch.train.fit``: one model, torch's threads."""
    return timed(lambda: fit(x, y, 10, config(batch)))


def folds_epoch(x: torch.Tensor, y: torch.Tensor, batch: int, stacked: bool) -> float:
    """Seconds per epoch and model of 5 fold-models, each on all rows of ``x``.

    ``stacked``: ``fit_stacked`` (one baddbmm for the 5), one epoch; else ``fit_folds`` as
    cross_validate calls it (on a CPU: one model per thread), ``FOLDS_EPOCHS`` epochs.
    """
    folds = [torch.arange(len(y))] * FOLDS
    if stacked:
        return timed(lambda: fit_stacked(x, y, folds, 10, config(batch))) / FOLDS
    cfg = config(batch, FOLDS_EPOCHS)
    return timed(lambda: fit_folds(x, y, folds, 10, cfg, lambda k, m: {})) / FOLDS / FOLDS_EPOCHS


def hpsearch_trial(data: Dataset, splits: list[Split], batch: int, epochs: int) -> tuple[float, list[float]]:
    """Seconds and per-fold validation accuracies of one hpsearch trial: ``cross_validate``, 5 folds."""
    result = []
    seconds = timed(lambda: result.append(cross_validate(data, splits, config(batch, epochs))))
    return seconds, [f["accuracy"] for f in result[0].folds]


class _MLP(nn.Module):
    """hpsearch's MLP (same sizes, same Kaiming init) as a module class skorch can rebuild per fold."""

    def __init__(self, n_in: int = 784, n_out: int = 10) -> None:
        super().__init__()
        self.net = build_mlp(n_in, n_out, DEPTH, WIDTH, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def skorch_trial(data: Dataset, splits: list[Split], batch: int, epochs: int) -> tuple[float, list[float]]:
    """Seconds and per-fold accuracies of skorch's NeuralNetClassifier under ``cross_val_score(cv=5)``.

    The same folds, MLP, optimizer, batch size and epochs as ``hpsearch_trial``; no internal
    validation split (skorch holds out 20% by default), shuffled batches.
    """
    from sklearn.model_selection import cross_val_score
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        _MLP,
        module__n_in=data.n_features,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        max_epochs=epochs,
        batch_size=batch,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    scores: list[np.ndarray] = []
    seconds = timed(lambda: scores.append(cross_val_score(net, data.x, data.y, cv=splits, scoring="accuracy")))
    return seconds, scores[0].tolist()


def subset(data: Dataset, rows: int) -> Dataset:
    """The first ``rows`` training rows of ``data`` (the test split is not used here)."""
    return replace(data, x=data.x[:rows], y=data.y[:rows])
