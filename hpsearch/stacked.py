"""The K fold-models of a trial: trained stacked or side by side in threads; evaluated as one module.

Stacked, K MLPs of one architecture are held as (K, in, out) weight tensors and one step
multiplies each fold's mini-batch by its own weights in one ``baddbmm``: the per-step overhead
is paid once for K models. The loss is the sum of the K fold losses, whose gradient with
respect to model k is model k's own, and every optimizer here is element-wise, so this trains
the K models that K runs of ``train.fit`` train (same seeds, same batches) up to float rounding.
On a CPU, ``fit_folds`` instead trains one fold-model at a time per thread, one core each:
the same models again, faster (``trains_stacked``). Tests hold all three paths together.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.errors import TrainingDiverged
from hpsearch.model import build_mlp
from hpsearch.train import Trainer, steps_per_epoch

StackedEpochCallback = Callable[[int, list[float], "StackedMLP"], None]  # (epoch, per-fold train loss, model)
FoldScore = Callable[[int, "StackedMLP"], dict[str, float]]  # (fold k, fold k's model alone) -> its figures
# (epoch, per-fold training loss, per-fold figures or None when the epoch is not scored)
FoldsEpochCallback = Callable[[int, list[float], list[dict[str, float]] | None], None]
_Outcome = tuple[float, dict[str, float] | None]  # a fold-epoch's training loss and figures
_EVAL_ROWS = 4096


class StackedMLP(nn.Module):
    """K MLPs of one architecture; input (K, B, in) -> logits (K, B, out).

    Args:
        weights: per layer (K, in, out); the module shares their storage, not a copy.
        biases: per layer (K, 1, out).
        dropout: dropout probability after each hidden ReLU.
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor], dropout: float = 0.0) -> None:
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(w, requires_grad=False) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b, requires_grad=False) for b in biases)
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

    def select(self, k: int) -> StackedMLP:
        """Model k alone, as a one-model StackedMLP sharing its weights."""
        weights = [w[k : k + 1] for w in self.weights]
        return StackedMLP(weights, [b[k : k + 1] for b in self.biases], self.dropout).train(self.training)

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


def fit_stacked(
    x: torch.Tensor,
    y: torch.Tensor,
    folds: list[torch.Tensor],
    n_classes: int,
    cfg: TrainConfig,
    on_epoch: StackedEpochCallback | None = None,
) -> StackedMLP:
    """Train K MLPs together, model k on rows ``folds[k]`` of ``x``, for ``cfg.epochs`` epochs.

    Model k is initialised and shuffled with seed ``cfg.seed + k``, as ``train.fit`` would with
    that seed; every model takes ``steps_per_epoch`` of the largest fold's rows per epoch.

    Args:
        x: float32 (n, n_features), the rows of every fold.
        y: int64 (n,) class indices.
        folds: K int64 tensors of row indices into ``x``: each model's training rows.
        n_classes: output units.
        cfg: the trial's training configuration.
        on_epoch: called after every epoch with the per-fold mean training loss and the model.

    Returns:
        The K models; the module shares the trainer's weights, so ``on_epoch`` sees them current.

    Raises:
        TrainingDiverged: a fold's training loss is NaN or infinite after an epoch.
    """
    trainer = Trainer(x, y, folds, n_classes, cfg)
    model = StackedMLP(trainer.weights, trainer.biases, cfg.dropout).train()
    for epoch in range(cfg.epochs):
        losses = trainer.run_epoch()
        if on_epoch is not None:
            on_epoch(epoch, losses, model)
    return model


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


def fit_folds(
    x: torch.Tensor,
    y: torch.Tensor,
    folds: list[torch.Tensor],
    n_classes: int,
    cfg: TrainConfig,
    score: FoldScore,
    *,
    on_epoch: FoldsEpochCallback | None = None,
    score_every_epoch: bool = False,
    stacked: bool | None = None,
) -> list[dict[str, float]]:
    """Train K fold-models (model k on rows ``folds[k]``, seed ``cfg.seed + k``) and score each.

    Args:
        x, y, folds, n_classes, cfg: as for ``fit_stacked``.
        score: fold k's validation figures, given fold k's model; may run in a worker thread.
        on_epoch: called after every epoch, in the calling thread, with the per-fold training
            losses and, when ``score_every_epoch``, the per-fold figures; it may raise to stop.
        score_every_epoch: score every epoch, not only the last.
        stacked: train the K models stacked, or one model at a time per thread; default
            ``trains_stacked(x.device)``.

    Returns:
        Each fold's figures after the last epoch.

    Raises:
        TrainingDiverged: a fold's training loss is NaN or infinite after an epoch.
    """
    figures: list[dict[str, float]] = []

    def scored(epoch: int) -> bool:
        return score_every_epoch or epoch == cfg.epochs - 1

    if not (trains_stacked(x.device) if stacked is None else stacked):
        workers = max(1, min(len(folds), torch.get_num_threads()))
        with _threads_per_worker(workers):
            # the trainers seed torch's global generator for their initial weights: in this thread only
            steps = steps_per_epoch(max(len(f) for f in folds), cfg.batch_size)  # as many as stacked takes
            trainers = [
                Trainer(x, y, [f], n_classes, replace(cfg, seed=cfg.seed + k), steps) for k, f in enumerate(folds)
            ]
            with closing(_interleave(trainers, cfg, score, scored, workers)) as epochs:
                for epoch, losses, figs in epochs:
                    figures = figs or figures
                    if on_epoch is not None:
                        on_epoch(epoch, losses, figs if score_every_epoch else None)
        return figures

    def hook(epoch: int, losses: list[float], model: StackedMLP) -> None:
        nonlocal figures
        figs = [score(k, model.select(k)) for k in range(len(folds))] if scored(epoch) else None
        figures = figs or figures
        if on_epoch is not None:
            on_epoch(epoch, losses, figs if score_every_epoch else None)

    fit_stacked(x, y, folds, n_classes, cfg, hook)
    return figures


def trains_stacked(device: torch.device) -> bool:
    """Whether ``fit_folds`` stacks the fold-models on ``device``: on a GPU, not on a CPU.

    A GPU runs the K models' products as one kernel where K would wait on launches. On a CPU,
    bench/ measured one model per thread (one torch thread each, as many threads as torch has)
    faster than stacking, which costs 5-25% per model even on one thread, and faster than one
    model splitting each of its small products over the cores.
    """
    return device.type != "cpu"


@contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """Split torch's intra-op threads among ``workers`` threads for the duration; restore them after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Epochs:
    """Hands out fold-epochs to threads: the least advanced fold that no thread is training."""

    def __init__(self, k_models: int, epochs: int) -> None:
        self.next, self.busy, self.epochs = [0] * k_models, [False] * k_models, epochs
        self.turn, self.closed = threading.Condition(), False

    def take(self) -> tuple[int, int] | None:
        """(epoch, fold) to train next, waiting while every fold left is busy; None when none is left."""
        with self.turn:
            while not self.closed and any(e + b < self.epochs for e, b in zip(self.next, self.busy, strict=True)):
                free = [k for k, e in enumerate(self.next) if not self.busy[k] and e < self.epochs]
                if free:
                    k = min(free, key=lambda k: self.next[k])  # ties: the lowest fold
                    self.busy[k] = True
                    return self.next[k], k
                self.turn.wait()
            return None

    def finish(self, k: int) -> None:
        with self.turn:
            self.busy[k], self.next[k] = False, self.next[k] + 1
            self.turn.notify_all()

    def close(self) -> None:
        with self.turn:
            self.closed = True
            self.turn.notify_all()


def _interleave(
    trainers: list[Trainer], cfg: TrainConfig, score: FoldScore, scored: Callable[[int], bool], workers: int
) -> Generator[tuple[int, list[float], list[dict[str, float]] | None]]:
    """Run every trainer's epochs in ``workers`` threads; yield each epoch once all folds finished it.

    No thread waits for the slowest fold of an epoch: a free thread takes the next epoch of the
    least advanced fold that is not being trained, so 5 folds keep 2 threads busy. A fold is
    scored by its thread as its epoch ends, as its weights were then. Close the generator to
    stop early: the threads stop after the fold-epoch they are in.
    """
    k_models, plan = len(trainers), _Epochs(len(trainers), cfg.epochs)
    done: queue.SimpleQueue[tuple[int, int, _Outcome | Exception]] = queue.SimpleQueue()

    def work() -> None:
        while (task := plan.take()) is not None:
            e, k = task
            try:
                (loss,) = trainers[k].run_epoch()
                model = StackedMLP(trainers[k].weights, trainers[k].biases, cfg.dropout)
                done.put((e, k, (loss, score(k, model) if scored(e) else None)))
            except TrainingDiverged as error:
                done.put((e, k, TrainingDiverged(f"{error} on fold {k + 1}")))
                return
            except Exception as error:  # noqa: BLE001 - handed to the calling thread, raised there
                done.put((e, k, error))
                return
            plan.finish(k)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    results: list[dict[int, _Outcome]] = [{} for _ in range(cfg.epochs)]
    try:
        for epoch in range(cfg.epochs):
            while len(results[epoch]) < k_models:
                e, k, outcome = done.get()
                if isinstance(outcome, Exception):
                    raise outcome
                results[e][k] = outcome
            losses = [results[epoch][k][0] for k in range(k_models)]
            figs = [f for k in range(k_models) if (f := results[epoch][k][1]) is not None]
            yield epoch, losses, figs or None
    finally:
        plan.close()
        for t in threads:
            t.join()
