"""The textbook training the hand-written trainer is held to: nn.Sequential, autograd and torch.optim.

It takes what ``training.fit(..., fold=k)`` takes from fold k's seed streams (``config.model_streams``):
the initial weights, the order of the rows and the dropout masks, so the two differ only by float
rounding. On any device: tests/training/test_trainer.py runs it on the CPU, bench/gpu.py on CUDA.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR

from hpsearch.config import TrainConfig, derive, model_streams
from hpsearch.training import build_mlp, steps_per_epoch


class Dropout(nn.Module):
    """F.dropout's arithmetic, its masks drawn from a generator of the reference's own."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * torch.empty_like(h).bernoulli_(1 - self.p, generator=self.generator).div_(1 - self.p)


def torch_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The plain ``torch.optim`` optimizer a TrainConfig names: what ``Trainer``'s flat-buffer steps equal."""
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def textbook_fit(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, cfg: TrainConfig, *, fold: int = 0, steps: int | None = None
) -> nn.Sequential:
    """Train fold ``fold``'s model on all of ``(x, y)`` (on their device) the textbook way.

    The masks are the trainer's only when no batch is padded: ``len(y)`` a multiple of the batch
    size (the trainer draws masks for its padded batch shape). ``class_weight = "balanced"`` weighs
    the loss by scikit-learn's balanced weights of all of ``y``, through ``F.cross_entropy(weight=...)``.
    """
    streams = model_streams(derive(cfg.seed, "train", fold))
    model = build_mlp(
        x.shape[1], n_classes, cfg.depth, cfg.width, generator=torch.Generator().manual_seed(streams.weights)
    ).to(x.device)
    if cfg.dropout > 0 or cfg.input_dropout > 0:  # the masks the trainer draws, from the dropout stream
        noise, layers = torch.Generator(x.device).manual_seed(streams.dropout), list[nn.Module]()
        if cfg.input_dropout > 0:
            layers.append(Dropout(cfg.input_dropout, noise))
        for layer in model:
            hidden = isinstance(layer, nn.ReLU) and cfg.dropout > 0
            layers += [layer, Dropout(cfg.dropout, noise)] if hidden else [layer]
        model = nn.Sequential(*layers)
    weight = None
    if cfg.class_weight == "balanced":
        balanced = compute_class_weight("balanced", classes=np.arange(n_classes), y=y.cpu().numpy())
        weight = torch.as_tensor(balanced, dtype=torch.float32, device=x.device)
    optimizer = torch_optimizer(model, cfg)
    schedule = CosineAnnealingLR(optimizer, T_max=cfg.epochs) if cfg.lr_schedule == "cosine" else None
    order = torch.Generator().manual_seed(streams.batches)  # on the CPU, as the trainer draws it
    for _ in range(cfg.epochs):
        permutation = torch.randperm(len(y), generator=order).to(x.device)
        for rows in permutation.tensor_split(steps or steps_per_epoch(len(y), cfg.batch_size)):
            loss = F.cross_entropy(model(x[rows]), y[rows], weight=weight, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        if schedule is not None:
            schedule.step()
    return model
