"""Train K MLPs of one architecture together on arrays held in memory, the backward pass written out.

Model k's weights are slice k of (K, in, out) tensors, so one ``baddbmm`` per layer computes the
K models' steps at once (K = 1 is one model; on a CPU ``folds.fit_folds`` runs K = 1 trainers
one per core). A step is its matrix products and a few element-wise kernels, no autograd graph,
no allocation: weights and gradients live in two flat buffers, so the optimizer is one call
(``optimizer.FlatOptimizer``). The loss is the sum of the K models' mean losses, whose gradient
with respect to model k is model k's own, and every optimizer here is element-wise, so K models
trained together are the K models trained alone (same seeds, same batches) up to float rounding.
Batches are ``tensor_split`` cuts of each model's permutation of its rows, ``ceil(n / batch_size)``
per epoch.

Why not autograd: ``python -m bench.trainers`` trains one 5-fold trial both ways (autograd and a
fused ``torch.optim`` optimizer in bench/autograd.py, with the same in-memory batches, flushed
denormals and one fold-model per core): this path took 1/1.22 of autograd's time at batch 64 and
1/1.06 at batch 256 (784-512-512-10, Adam), and 1/1.42 and 1/1.15 on a 128-wide MLP. A new
training option (another activation, clipping, label smoothing) must be written into ``run_epoch``
and ``_forward`` by hand, and tests/training/test_trainer.py holds the result to autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from hpsearch.config import TrainConfig, derive, model_streams
from hpsearch.errors import ConfigError, TrainingDiverged
from hpsearch.training.model import StackedMLP, build_mlp
from hpsearch.training.optimizer import FlatOptimizer, lr_at
from hpsearch.training.process import training_settings

_relu_backward = torch.ops.aten.threshold_backward.grad_input  # grad * (activation > 0), in place

# (epoch index, each model's mean training loss, each model's validation figures or None when
# the epoch was not scored); it may raise to stop training
EpochCallback = Callable[[int, list[float], list[dict[str, float]] | None], None]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``n`` rows: batches of at most ``batch_size``."""
    return math.ceil(n / batch_size)


class Trainer:
    """K MLPs of one architecture, model k trained on rows ``folds[k]`` of ``x``, one epoch per call.

    Model k's seed, by default fold k's stream of the study seed (``derive(cfg.seed, "train", k)``),
    splits into three generators of its own (``config.model_streams``): its initial weights
    (``build_mlp``), its batch order and its dropout masks; torch's global generator is never
    touched. So model k of K is what ``fit(..., fold=k)`` trains, up to float rounding. Run its
    epochs inside ``process.training_settings`` (``fit`` and ``folds.fit_folds`` do).

    Args:
        x: float32 features (n, n_features); every fold's rows are gathered from it per step.
        y: int64 class indices (n,).
        folds: K int64 tensors of row indices into ``x``, the training rows of each model.
        n_classes: output units.
        cfg: architecture, optimizer and schedule.
        steps: steps per epoch; default ``steps_per_epoch`` of the largest fold.
        seeds: one seed per model; default fold k's stream for model k.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        folds: list[torch.Tensor],
        n_classes: int,
        cfg: TrainConfig,
        steps: int | None = None,
        seeds: list[int] | None = None,
    ) -> None:
        seeds = seeds or [derive(cfg.seed, "train", k) for k in range(len(folds))]
        self.x, self.y, self.folds, self.cfg, self.epoch = x, y, folds, cfg, 0
        self.counts = [len(f) for f in folds]
        self.steps = steps or steps_per_epoch(max(self.counts), cfg.batch_size)
        # model k's own generators, not torch's global one (trainers run in threads side by side, and
        # the caller's generator is the caller's): initial weights and batch order on the CPU, so the
        # same on every device; dropout masks on the device, where they are drawn every step
        streams = [model_streams(seed) for seed in seeds]
        self.orders = [torch.Generator().manual_seed(s.batches) for s in streams]
        self.noise = [torch.Generator(x.device).manual_seed(s.dropout) for s in streams]
        members = []
        for s in streams:
            init = torch.Generator().manual_seed(s.weights)
            mlp = build_mlp(x.shape[1], n_classes, cfg.depth, cfg.width, generator=init)
            members.append([m for m in mlp if isinstance(m, nn.Linear)])
        # layer by layer, (K, in, out) weights (nn.Linear's (out, in) transposed, as baddbmm wants
        # them) and (K, 1, out) biases, one after the other in one flat buffer; gradients alike
        shapes = [(len(folds), lin.in_features, lin.out_features) for lin in members[0]]
        self.flat = torch.empty(sum(k * (i + 1) * o for k, i, o in shapes), device=x.device)
        grad = torch.empty_like(self.flat)
        views: tuple[list[torch.Tensor], ...] = ([], [], [], [])
        (self.weights, self.biases, self.grad_w, self.grad_b), at = views, 0
        for i, (k, n_in, n_out) in enumerate(shapes):
            for buffer, weights, biases in ((self.flat, self.weights, self.biases), (grad, self.grad_w, self.grad_b)):
                weights.append(buffer[at : at + k * n_in * n_out].view(k, n_in, n_out))
                biases.append(buffer[at + k * n_in * n_out : at + k * (n_in + 1) * n_out].view(k, 1, n_out))
            at += k * (n_in + 1) * n_out
            self.weights[i].copy_(torch.stack([m[i].weight.detach().T for m in members]))
            self.biases[i].copy_(torch.stack([m[i].bias.detach() for m in members]).unsqueeze(1))
        self.optimizer = FlatOptimizer(self.flat, grad, cfg)
        # model k's class weights (K, C): "balanced" from its own training rows only, or the weights given
        self.class_weights = _class_weights(cfg.class_weight, y, folds, n_classes)

    def model(self) -> StackedMLP:
        """The K models as they are now; the module shares the trainer's weights."""
        return StackedMLP(self.weights, self.biases, self.cfg.dropout)

    def run_epoch(self) -> list[float]:
        """Train every model for one epoch.

        Returns:
            Each model's mean training loss over its rows.

        Raises:
            TrainingDiverged: a model's loss is NaN or infinite.
        """
        self.optimizer.set_lr(lr_at(self.cfg, self.epoch))
        rows, valid, weight = self._schedule()
        steps, k_models, batch = rows.shape
        xb, yb = self.x.new_empty((k_models, batch, self.x.shape[1])), self.y.new_empty((k_models, batch, 1))
        acts = [xb] + [self.x.new_empty((k_models, batch, w.shape[2])) for w in self.weights]  # in, each layer's out
        grads = [self.x.new_empty((k_models, batch, w.shape[1])) for w in self.weights]
        masks = [torch.empty_like(a) for a in acts[1:-1]] if self.cfg.dropout > 0 else []
        in_mask = torch.empty_like(xb) if self.cfg.input_dropout > 0 else None
        picked = self.x.new_empty((steps, k_models, batch, 1))  # log-likelihood of each row
        # d loss / d logits = softmax - target; the target: (1 - s) on the row's class, s / C on each class
        smoothing, n_classes = self.cfg.label_smoothing, self.weights[-1].shape[2]
        minus_targets: list[torch.Tensor] = [self.x.new_full((k_models, batch, 1), smoothing - 1.0)] * steps
        scales: list[torch.Tensor | None] = [None] * steps
        spread: float | torch.Tensor = smoothing / n_classes
        if self.class_weights is not None:  # each row's softmax scaled, its target and the batch mean weighted
            scale, minus_target, weight = self._class_weighting(rows, valid)
            scales, minus_targets = list(scale.unbind()), list(minus_target.unbind())
            spread = (smoothing / n_classes) * self.class_weights.unsqueeze(1)
        # views made once an epoch, not per step: each costs microseconds of Python and dispatch
        x_rows, y_rows = xb.view(k_models * batch, -1), yb.view(-1)
        acts_t, weights_t = [a.transpose(1, 2) for a in acts], [w.transpose(1, 2) for w in self.weights]
        per_step = zip(
            rows.view(steps, -1).unbind(), valid.unbind(), weight.unbind(), picked.unbind(), scales, minus_targets,
            strict=True,
        )  # fmt: skip
        for step_rows, step_valid, step_weight, step_picked, step_scale, step_minus_target in per_step:
            torch.index_select(self.x, 0, step_rows, out=x_rows)
            torch.index_select(self.y, 0, step_rows, out=y_rows)
            self._forward(acts, masks, in_mask)
            logp = torch.log_softmax(acts[-1], 2)
            torch.mul(torch.gather(logp, 2, yb), step_valid, out=step_picked)
            d = logp.exp_()  # d loss / d logits, from here
            if step_scale is not None:
                d.mul_(step_scale)
            d.scatter_add_(2, yb, step_minus_target)
            if smoothing > 0:
                d.sub_(spread)
            d.mul_(step_weight)
            for i in reversed(range(len(self.weights))):
                torch.bmm(acts_t[i], d, out=self.grad_w[i])
                torch.sum(d, 1, keepdim=True, out=self.grad_b[i])
                if i > 0:
                    d = torch.bmm(d, weights_t[i], out=grads[i])
                    if masks:
                        d.mul_(masks[i - 1])
                    d = _relu_backward(d, acts[i], 0, grad_input=d)
            self.optimizer.step()
        # the reported training loss is plain cross-entropy, unweighted and unsmoothed, whatever was minimised
        counts = torch.tensor(self.counts, dtype=torch.float32, device=self.x.device)
        losses: list[float] = (-picked.sum(dim=(0, 2, 3)) / counts).tolist()
        self.epoch += 1
        for k, value in enumerate(losses):
            if not math.isfinite(value):
                where = f" on fold {k + 1}" if len(losses) > 1 else ""
                raise TrainingDiverged(f"training loss became {value}{where} in epoch {self.epoch}")
        return losses

    def _forward(self, acts: list[torch.Tensor], masks: list[torch.Tensor], in_mask: torch.Tensor | None) -> None:
        """Every layer's output from ``acts[0]`` into ``acts[1:]``, hidden ones after ReLU and dropout
        (and ``acts[0]`` itself after input dropout, when ``in_mask`` is given)."""
        last, p = len(self.weights) - 1, self.cfg.dropout
        if in_mask is not None:  # drawn before the hidden masks, from the same generators
            for mask, generator in zip(in_mask, self.noise, strict=True):
                mask.bernoulli_(1 - self.cfg.input_dropout, generator=generator)
            acts[0].mul_(in_mask.div_(1 - self.cfg.input_dropout))
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, acts[i], w, out=acts[i + 1])
            if i < last:
                h.relu_()
                if masks:  # the masks F.dropout draws, each model's from its own generator
                    for mask, generator in zip(masks[i], self.noise, strict=True):
                        mask.bernoulli_(1 - p, generator=generator)
                    h.mul_(masks[i].div_(1 - p))

    def _class_weighting(
        self, rows: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What class weights change in each row's gradient, for every step (shapes of ``valid``).

        With class weights w, torch's ``F.cross_entropy(logits, y, weight=w, label_smoothing=s)`` of
        a batch B is ``[(1 - s) sum_i w_yi (-log p_i,yi) + (s / C) sum_i sum_c w_c (-log p_i,c)] /
        sum_i w_yi`` (the smoothing term weighs class c by w_c, whatever the row's class), so the
        gradient with respect to row i's logits is ``[((1 - s) w_yi + (s / C) sum_c w_c) p_i -
        (1 - s) w_yi onehot(yi) - (s / C) w] / sum_(j in B) w_yj``.

        Returns:
            The scale of each row's softmax, minus its share of the target on its own class, and its
            weight in its model's batch mean (0 on padding and where a step has no row of that model).
        """
        assert self.class_weights is not None  # only called with class weights
        models = torch.arange(len(self.folds), device=rows.device)[:, None]
        row_weight = self.class_weights[models, self.y[rows]].unsqueeze(3) * valid  # 0 on padding
        smoothing, n_classes = self.cfg.label_smoothing, self.class_weights.shape[1]
        scale = (1 - smoothing) * row_weight + (smoothing / n_classes) * self.class_weights.sum(1)[:, None, None]
        total = row_weight.sum(dim=2, keepdim=True).clamp(min=torch.finfo(row_weight.dtype).tiny)
        return scale, -(1 - smoothing) * row_weight, valid / total

    def _schedule(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows of every step for every model, as ``tensor_split`` cuts each model's permutation.

        Returns:
            rows (steps, K, b) indices into ``x``; valid (steps, K, b, 1), 0 on padding; and the
            rows' weights in their model's batch mean, ``valid`` over the batch's row count (0 where a step
            has no row of that model: an empty batch adds nothing, rather than 0 / 0).
        """
        steps, device, rows, valid = self.steps, self.x.device, [], []
        slot, step = torch.arange(math.ceil(max(self.counts) / steps)), torch.arange(steps)
        for fold, n, order in zip(self.folds, self.counts, self.orders, strict=True):
            size, extra = divmod(n, steps)  # tensor_split: the first `extra` batches get one row more
            start, length = step * size + step.clamp(max=extra), size + (step < extra).long()
            ok = slot < length[:, None]
            position = torch.where(ok, start[:, None] + slot, 0)
            rows.append(fold[torch.randperm(n, generator=order).to(device)[position.to(device)]])
            valid.append(ok)
        mask = torch.stack(valid, dim=1).to(device=device, dtype=torch.float32).unsqueeze(3)
        return torch.stack(rows, dim=1), mask, mask / mask.sum(dim=2, keepdim=True).clamp(min=1)


def _class_weights(
    given: str | tuple[float, ...], y: torch.Tensor, folds: list[torch.Tensor], n_classes: int
) -> torch.Tensor | None:
    """Each model's class weights (K, C), or None when the loss weighs every row alike.

    Raises:
        ConfigError: "balanced" and a class without a training row, or a weight per class of another count.
    """
    if given == "balanced":
        return torch.stack([balanced_weights(y[f], n_classes) for f in folds])
    if not isinstance(given, tuple):
        return None
    if len(given) != n_classes:
        raise ConfigError(f"class_weight gives {len(given)} weights, but the data have {n_classes} classes")
    return torch.tensor(given, dtype=torch.float32, device=y.device).expand(len(folds), n_classes)


def balanced_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """scikit-learn's "balanced" class weights of the labels ``y``, ``n / (C * n_c)``, float32 on y's device.

    Raises:
        ConfigError: a class has no row in ``y``, so its weight would be infinite.
    """
    labels = y.cpu().numpy()
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        missing = int(np.flatnonzero(counts == 0)[0])
        raise ConfigError(
            f"class_weight = 'balanced' weighs each class by its training rows, but class {missing} has none"
        )
    weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=labels)
    return torch.as_tensor(weights, dtype=torch.float32, device=y.device)


def fit(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    cfg: TrainConfig,
    on_epoch: EpochCallback | None = None,
    steps: int | None = None,
    fold: int = 0,
) -> nn.Sequential:
    """Train a fresh MLP for ``cfg.epochs`` epochs of shuffled mini-batches.

    Args:
        x: float32 features, (n, n_features), on ``cfg.device``.
        y: int64 class indices, (n,), on the same device.
        n_classes: output units.
        cfg: architecture, optimizer and schedule; ``cfg.seed``, the study seed, fixes init and batch order.
        on_epoch: called after every epoch with its index and ``[mean training loss]``.
        steps: batches per epoch; default ``steps_per_epoch(n, cfg.batch_size)``.
        fold: whose seed stream the model takes: fold k's trains fold-model k of a trial (the final
            retrain on all training rows takes fold 0's).

    Returns:
        The trained ``build_mlp`` model, in training mode.

    Raises:
        TrainingDiverged: the training loss of an epoch is NaN or infinite.
    """
    seeds = [derive(cfg.seed, "train", fold)]
    with training_settings():
        trainer = Trainer(x, y, [torch.arange(len(y), device=x.device)], n_classes, cfg, steps, seeds)
        for epoch in range(cfg.epochs):
            losses = trainer.run_epoch()
            if on_epoch is not None:
                on_epoch(epoch, losses, None)
    return trainer.model().member(0).train()
