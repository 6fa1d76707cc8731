"""Fit one MLP on arrays held in memory; evaluate it under no_grad in eval mode.

Batches are contiguous slices of the rows permuted once per epoch: no DataLoader and no
per-sample Python in the hot loop. An epoch is ``ceil(n / batch_size)`` batches of nearly
equal size (``tensor_split``), so K folds of slightly different sizes take the same number of
steps and can be trained together (``stacked.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.errors import ConfigError, TrainingDiverged
from hpsearch.model import build_mlp

# Denormal floats make CPU matrix products and optimizer steps several times slower late in
# training; the flag only takes effect in torch's worker threads if set before they start.
torch.set_flush_denormal(True)

EpochCallback = Callable[[int, float], None]  # (epoch index, mean training loss)
_EVAL_CHUNK = 8192


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cpu`` and ``cuda`` pass through.

    Raises:
        ConfigError: ``cuda`` asked for where torch sees no GPU.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but torch sees no GPU here; use --device auto or cpu")
    return name


def as_tensors(x: np.ndarray, y: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as float32 and labels as int64 tensors on ``device``."""
    return torch.as_tensor(x, dtype=torch.float32, device=device), torch.as_tensor(y, device=device)


def save_weights(model: nn.Module, path: Path) -> None:
    """Write the model's ``state_dict`` (on the CPU) to ``path``."""
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer a TrainConfig names, over the model's parameters."""
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        # fused: one kernel for all parameters; measured 2x faster per step than the default
        # foreach implementation for the MLPs here (bench/), same arithmetic
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``n`` rows: batches of at most ``batch_size``."""
    return math.ceil(n / batch_size)


def fit(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    cfg: TrainConfig,
    on_epoch: EpochCallback | None = None,
    steps: int | None = None,
) -> nn.Module:
    """Train a fresh MLP for ``cfg.epochs`` epochs of shuffled mini-batches.

    Args:
        x: float32 features, (n, n_features), on ``cfg.device``.
        y: int64 class indices, (n,), on the same device.
        n_classes: output units.
        cfg: architecture, optimizer and schedule; ``cfg.seed`` fixes init and batch order.
        on_epoch: called after every epoch with its index and mean training loss.
        steps: batches per epoch; default ``steps_per_epoch(n, cfg.batch_size)``.

    Returns:
        The trained model, in training mode.

    Raises:
        TrainingDiverged: the training loss of an epoch is NaN or infinite.
    """
    torch.manual_seed(cfg.seed)  # weight init and dropout masks
    order = torch.Generator().manual_seed(cfg.seed)
    model = build_mlp(x.shape[1], n_classes, cfg.depth, cfg.width, cfg.dropout).to(x.device)
    optimizer = make_optimizer(model, cfg)
    model.train()
    n = len(y)
    steps = steps or steps_per_epoch(n, cfg.batch_size)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=order).to(x.device)
        xs, ys = x[perm], y[perm]  # one gather per epoch; batches below are views
        total = torch.zeros((), device=x.device)
        for xb, yb in zip(xs.tensor_split(steps), ys.tensor_split(steps), strict=True):
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += loss.detach() * len(yb)
        mean_loss = float(total) / n
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(f"training loss became {mean_loss} in epoch {epoch + 1}")
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
    return model


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and predicted classes of ``model`` on ``(x, y)``, in eval mode.

    Returns:
        The loss (NaN if the model's outputs are not finite) and the arg-max predictions.
    """
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + _EVAL_CHUNK]) for i in range(0, len(x), _EVAL_CHUNK)])
    loss = float(F.cross_entropy(logits, y))
    model.train(was_training)
    return loss, logits.argmax(dim=1).cpu().numpy()
