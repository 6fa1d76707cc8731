"""Train the K fold-models of a trial together: stacked weights, batched matrix products.

K MLPs of one architecture are held as (K, in, out) weight tensors; one step multiplies each
fold's mini-batch by its own weights in one ``baddbmm``, so the per-step overhead (autograd,
optimizer, Python) is paid once for K models instead of K times. The loss is the sum of the K
fold losses: its gradient with respect to model k is model k's own gradient, and every
optimizer here is element-wise, so this trains the same K models that K runs of ``train.fit``
train (same seeds, same batches), up to float rounding. A test holds it to that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.errors import TrainingDiverged
from hpsearch.model import build_mlp
from hpsearch.train import make_optimizer, steps_per_epoch

StackedEpochCallback = Callable[[int, list[float], "StackedMLP"], None]  # (epoch, per-fold train loss, model)
_EVAL_ROWS = 4096


class StackedMLP(nn.Module):
    """K MLPs of one architecture; input (K, B, in) -> logits (K, B, out)."""

    def __init__(self, members: list[nn.Sequential], dropout: float = 0.0) -> None:
        super().__init__()
        layers = [[m for m in member if isinstance(m, nn.Linear)] for member in members]
        depth = len(layers[0])
        # nn.Linear keeps (out, in); stacking the transposes gives the (K, in, out) that bmm wants
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in layers]).contiguous()) for i in range(depth)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]).unsqueeze(1)) for i in range(depth)
        )
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.relu(x)
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
        return x

    def member(self, k: int) -> nn.Sequential:
        """Model k as a plain ``build_mlp`` network with its weights (a copy)."""
        n_in, n_out = self.weights[0].shape[1], self.weights[-1].shape[2]
        width = self.weights[0].shape[2]
        model = build_mlp(n_in, n_out, len(self.weights) - 1, width, self.dropout)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases, strict=True):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        return model.to(self.weights[0].device)


def stack(arrays: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Pad K tensors of unequal row counts to one (K, n_max, ...) tensor; also return the counts."""
    counts = [len(a) for a in arrays]
    out = arrays[0].new_zeros((len(arrays), max(counts), *arrays[0].shape[1:]))
    for k, a in enumerate(arrays):
        out[k, : len(a)] = a
    return out, counts


def fit_stacked(
    x: torch.Tensor,
    y: torch.Tensor,
    counts: list[int],
    n_classes: int,
    cfg: TrainConfig,
    on_epoch: StackedEpochCallback | None = None,
) -> StackedMLP:
    """Train K MLPs, model k on the first ``counts[k]`` rows of ``x[k]``, for ``cfg.epochs`` epochs.

    Model k is initialised and shuffled with seed ``cfg.seed + k``, as ``train.fit`` would with
    that seed; every model takes ``steps_per_epoch(max(counts))`` steps per epoch.

    Args:
        x: float32 (K, n_max, n_features), padded past each fold's count.
        y: int64 (K, n_max) class indices, padded likewise.
        counts: training rows of each fold.
        n_classes: output units.
        cfg: the trial's training configuration.
        on_epoch: called after every epoch with the per-fold mean training loss and the model.

    Raises:
        TrainingDiverged: a fold's training loss is NaN or infinite after an epoch.
    """
    k_models, device = len(counts), x.device
    members = []
    for k in range(k_models):
        torch.manual_seed(cfg.seed + k)
        members.append(build_mlp(x.shape[2], n_classes, cfg.depth, cfg.width, cfg.dropout))
    model = StackedMLP(members, cfg.dropout).to(device)
    optimizer = make_optimizer(model, cfg)
    orders = [torch.Generator().manual_seed(cfg.seed + k) for k in range(k_models)]
    steps = steps_per_epoch(max(counts), cfg.batch_size)
    fold_index = torch.arange(k_models, device=device)[:, None]
    n_rows = torch.tensor(counts, dtype=torch.float32, device=device)
    model.train()
    for epoch in range(cfg.epochs):
        rows, mask = _schedule(counts, steps, orders, device)
        total = torch.zeros(k_models, device=device)
        for s in range(steps):
            xb, yb, mb = x[fold_index, rows[s]], y[fold_index, rows[s]], mask[s]
            logits = model(xb)
            ce = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view_as(mb) * mb
            loss = (ce.sum(dim=1) / mb.sum(dim=1)).sum()  # each fold's mean loss, summed over folds
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += ce.detach().sum(dim=1)
        losses = (total / n_rows).tolist()
        for k, value in enumerate(losses):
            if not math.isfinite(value):
                raise TrainingDiverged(f"training loss became {value} on fold {k + 1} in epoch {epoch + 1}")
        if on_epoch is not None:
            on_epoch(epoch, losses, model)
    return model


def _schedule(
    counts: list[int], steps: int, orders: list[torch.Generator], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of every step for every fold, as ``train.fit`` splits one permutation into batches.

    Returns:
        rows (steps, K, b_max) indices into each fold's rows, and a 0/1 mask of the same shape
        that marks padding where a fold's batch is shorter than the longest one.
    """
    b_max = math.ceil(max(counts) / steps)
    rows = torch.zeros((steps, len(counts), b_max), dtype=torch.long)
    mask = torch.zeros((steps, len(counts), b_max))
    for k, (n, order) in enumerate(zip(counts, orders, strict=True)):
        for s, part in enumerate(torch.randperm(n, generator=order).tensor_split(steps)):
            rows[s, k, : len(part)] = part
            mask[s, k, : len(part)] = 1.0
    return rows.to(device), mask.to(device)


@torch.no_grad()
def evaluate_stacked(
    model: StackedMLP, x: torch.Tensor, y: torch.Tensor, counts: list[int]
) -> list[tuple[float, np.ndarray]]:
    """Per fold: mean cross-entropy and predicted classes on its first ``counts[k]`` rows, in eval mode."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[:, i : i + _EVAL_ROWS]) for i in range(0, x.shape[1], _EVAL_ROWS)], dim=1)
    model.train(was_training)
    results = []
    for k, n in enumerate(counts):
        fold_logits = logits[k, :n]
        loss = float(F.cross_entropy(fold_logits, y[k, :n]))
        results.append((loss, fold_logits.argmax(dim=1).cpu().numpy()))
    return results
