"""The K fold-models of a trial: stacked in one Trainer (a GPU), or one per core in threads (a CPU).

Stacked, one step multiplies each fold's mini-batch by its own weights in one ``baddbmm``: the
per-step overhead is paid once for K models. On a CPU, ``fit_folds`` instead trains one
fold-model at a time per thread, one core each: the same models (``trains_stacked``), faster.
Tests hold both paths to K separate runs of ``trainer.fit``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager

import torch
from torch import nn

from hpsearch.config import TrainConfig, derive
from hpsearch.errors import TrainingDiverged
from hpsearch.training.model import StackedMLP
from hpsearch.training.process import training_settings
from hpsearch.training.trainer import EpochCallback, Trainer, steps_per_epoch

FoldScore = Callable[[int, StackedMLP], dict[str, float]]  # (fold k, fold k's model alone) -> its figures
_Outcome = tuple[float, dict[str, float] | None]  # a fold-epoch's training loss and figures


def plan_waves(folds: int, per_wave: int) -> list[list[int]]:
    """Folds 0..K-1 in waves of ``per_wave``: 5 folds in waves of 2 are [0, 1], [2, 3], [4]."""
    width = max(1, min(per_wave, folds))
    return [list(range(start, min(start + width, folds))) for start in range(0, folds, width)]


def fit_stacked(
    x: torch.Tensor, y: torch.Tensor, folds: list[torch.Tensor], n_classes: int, cfg: TrainConfig
) -> StackedMLP:
    """Train K MLPs stacked in one Trainer, model k on rows ``folds[k]`` of ``x``, for ``cfg.epochs`` epochs.

    Model k takes fold k's seed stream, as ``trainer.fit(..., fold=k)`` would; every model takes
    ``steps_per_epoch`` of the largest fold's rows per epoch.

    Raises:
        TrainingDiverged: a fold's training loss is NaN or infinite after an epoch.
    """
    with training_settings():
        trainer = Trainer(x, y, folds, n_classes, cfg)
        for _ in range(cfg.epochs):
            trainer.run_epoch()
    return trainer.model().train()


WaveCallback = Callable[[int, list[int], list[dict[str, float]]], None]  # (wave, its folds, figures so far)


def fit_folds(
    x: torch.Tensor,
    y: torch.Tensor,
    folds: list[torch.Tensor],
    n_classes: int,
    cfg: TrainConfig,
    score: FoldScore,
    *,
    on_epoch: EpochCallback | None = None,
    score_every_epoch: bool = False,
    stacked: bool | None = None,
    waves: list[list[int]] | None = None,
    on_wave: WaveCallback | None = None,
    keep: dict[int, nn.Sequential] | None = None,
) -> list[dict[str, float]]:
    """Train K fold-models (model k on rows ``folds[k]``, fold k's seed stream) and score each.

    Args:
        x: float32 (n, n_features), the rows of every fold.
        y: int64 (n,) class indices.
        folds: K int64 tensors of row indices into ``x``: each model's training rows.
        n_classes: output units.
        cfg: the trial's training configuration.
        score: fold k's validation figures, given fold k's model; may run in a worker thread.
        on_epoch: called after every epoch, in the calling thread, with the per-fold training
            losses and, when ``score_every_epoch``, the per-fold figures, of the folds of the
            current wave; the epoch counts on across waves (wave w's epoch e is w*E + e); it
            may raise to stop.
        score_every_epoch: score every epoch, not only the last.
        stacked: train the K models stacked, or one model at a time per thread; default
            ``trains_stacked(x.device)``.
        waves: the folds to train together, wave after wave (each wave to its last epoch
            before the next starts); default one wave of all K.
        on_wave: called after each wave but the last with its index, the folds trained so far
            and their figures, in that order; it may raise to stop.
        keep: filled, when given, with each trained fold's model after its last epoch (fold k ->
            a ``build_mlp`` network on the CPU, in eval mode): a fold-ensemble's members.

    Returns:
        The figures after the last epoch of every fold trained, in fold order.

    Raises:
        TrainingDiverged: a fold's training loss is NaN or infinite after an epoch.
    """
    plan = waves or [list(range(len(folds)))]
    done: dict[int, dict[str, float]] = {}
    with training_settings():
        for w, wave in enumerate(plan):
            figures = _fit_wave(
                x, y, folds, wave, n_classes, cfg, score, w, on_epoch, score_every_epoch, stacked, keep
            )  # fmt: skip
            done |= dict(zip(wave, figures, strict=True))
            if on_wave is not None and w < len(plan) - 1:
                trained = sorted(done)
                on_wave(w, trained, [done[k] for k in trained])
    return [done[k] for k in sorted(done)]


def _fit_wave(
    x: torch.Tensor,
    y: torch.Tensor,
    folds: list[torch.Tensor],
    wave: list[int],
    n_classes: int,
    cfg: TrainConfig,
    score: FoldScore,
    w: int,
    on_epoch: EpochCallback | None,
    score_every_epoch: bool,
    stacked: bool | None,
    keep: dict[int, nn.Sequential] | None,
) -> list[dict[str, float]]:
    """Train the folds of one wave to their last epoch; their figures, in the wave's order."""

    def scored(epoch: int) -> bool:
        return score_every_epoch or epoch == cfg.epochs - 1

    def score_fold(i: int, model: StackedMLP) -> dict[str, float]:
        return score(wave[i], model)

    seeds = [derive(cfg.seed, "train", k) for k in wave]
    steps = steps_per_epoch(max(len(f) for f in folds), cfg.batch_size)  # every fold takes as many
    figures: list[dict[str, float]] = []
    with contextlib.ExitStack() as stack:
        if trains_stacked(x.device) if stacked is None else stacked:
            trainers = [Trainer(x, y, [folds[k] for k in wave], n_classes, cfg, steps, seeds)]
            epochs = _stacked(trainers[0], score_fold, scored)
        else:
            workers = max(1, min(len(wave), torch.get_num_threads()))
            stack.enter_context(_threads_per_worker(workers))
            trainers = [Trainer(x, y, [folds[k]], n_classes, cfg, steps, [s]) for k, s in zip(wave, seeds, strict=True)]
            epochs = stack.enter_context(closing(_interleave(trainers, cfg, score_fold, scored, workers)))
        for epoch, losses, figs in epochs:
            figures = figs or figures
            if on_epoch is not None:
                on_epoch(w * cfg.epochs + epoch, losses, figs if score_every_epoch else None)
        if keep is not None:  # one trainer of the wave's K models, or K trainers of one each
            members = [t.model().member(i) for t in trainers for i in range(len(t.folds))]
            keep |= {k: member.cpu().eval() for k, member in zip(wave, members, strict=True)}
    return figures


def _stacked(
    trainer: Trainer, score: FoldScore, scored: Callable[[int], bool]
) -> Iterator[tuple[int, list[float], list[dict[str, float]] | None]]:
    """Run the stacked trainer's epochs; yield each with its losses and, when scored, every fold's figures."""
    for epoch in range(trainer.cfg.epochs):
        losses = trainer.run_epoch()
        if not scored(epoch):
            yield epoch, losses, None
            continue
        model = trainer.model()
        yield epoch, losses, [score(k, model.select(k)) for k in range(len(losses))]


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
                model = trainers[k].model()
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
