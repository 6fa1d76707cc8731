"""The K-model trainer on autograd and torch.optim, measured against the package's in bench/trainers.py.

The same (K, in, out) stacked weights, in-memory batches, per-model generators, flushed
denormals and one fold-model per core as ``hpsearch.training.Trainer``; the step is autograd's
backward and a fused ``torch.optim`` optimizer, the cosine schedule torch's ``CosineAnnealingLR``.
On tests/training/main_fold_figures.json's cases it reproduced every fold figure within 1.2e-7.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.errors import TrainingDiverged
from hpsearch.training import Trainer


def make_optimizer(params: list[torch.Tensor], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured torch.optim optimizer, fused where torch has a fused kernel for the device."""
    lr, decay, on_cpu = cfg.lr, cfg.weight_decay, params[0].device.type == "cpu"
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=True)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=decay, fused=True)
    if cfg.optimizer == "adagrad":  # torch's fused Adagrad runs on the CPU only
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay, fused=on_cpu or None)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=decay)  # no fused kernel


class AutogradTrainer(Trainer):
    """The package's Trainer (same initial weights, batches and dropout generators), stepped by autograd.

    Its weights are parameters of their own, and ``run_epoch`` lets autograd's backward and a
    ``torch.optim`` optimizer do what the package's hand-written step does.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        folds: list[torch.Tensor],
        n_classes: int,
        cfg: TrainConfig,
        steps: int | None = None,
    ) -> None:
        super().__init__(x, y, folds, n_classes, cfg, steps)
        self.weights = [nn.Parameter(w.clone()) for w in self.weights]
        self.biases = [nn.Parameter(b.clone()) for b in self.biases]
        self.params = [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]
        self.adam = make_optimizer(self.params, cfg)
        # the cosine schedule steps once an epoch: the rate of epoch e is lr (1 + cos(pi e / E)) / 2
        cosine = cfg.lr_schedule == "cosine"
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.adam, cfg.epochs) if cosine else None

    def run_epoch(self) -> list[float]:
        """Train every model for one epoch; each model's mean training loss over its rows."""
        rows, valid, weight = (t.squeeze(-1) if t.dim() == 4 else t for t in self._schedule())
        steps, k_models, batch = rows.shape
        xb, yb = self.x.new_empty((k_models, batch, self.x.shape[1])), self.y.new_empty(k_models * batch)
        hidden = [w.shape[2] for w in self.weights[:-1]]
        masks = [self.x.new_empty((k_models, batch, n)) for n in hidden] if self.cfg.dropout > 0 else []
        losses = self.x.new_empty((steps, k_models, batch))  # each row's cross-entropy, 0 on padding
        x_rows = xb.view(k_models * batch, -1)  # a view made once an epoch, not per step
        for step_rows, step_valid, step_weight, step_losses in zip(
            rows.view(steps, -1).unbind(), valid.unbind(), weight.unbind(), losses.unbind(), strict=True
        ):
            torch.index_select(self.x, 0, step_rows, out=x_rows)
            torch.index_select(self.y, 0, step_rows, out=yb)
            logits = self._autograd_forward(xb, masks)
            row_loss = F.cross_entropy(logits.view(k_models * batch, -1), yb, reduction="none").view(k_models, batch)
            for p in self.params:
                p.grad = None  # zero_grad(), without its Python overhead per step
            torch.sum(row_loss * step_weight).backward()  # each model's batch mean, summed over the models
            self.adam.step()
            torch.mul(row_loss.detach(), step_valid, out=step_losses)
        if self.schedule is not None:
            self.schedule.step()
        counts = torch.tensor(self.counts, dtype=torch.float32, device=self.x.device)
        means: list[float] = (losses.sum(dim=(0, 2)) / counts).tolist()
        self.epoch += 1
        for k, value in enumerate(means):
            if not math.isfinite(value):
                raise TrainingDiverged(f"training loss became {value} on fold {k + 1} in epoch {self.epoch}")
        return means

    def _autograd_forward(self, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        last, p = len(self.weights) - 1, self.cfg.dropout
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu_(x)  # in place: baddbmm's backward needs its inputs, not its output
                if masks:  # the masks F.dropout draws, each model's from its own generator
                    for mask, generator in zip(masks[i], self.noise, strict=True):
                        mask.bernoulli_(1 - p, generator=generator)
                    x = x * masks[i].div_(1 - p)
        return x
