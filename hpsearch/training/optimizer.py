"""The optimizer of the hand-written trainer: torch.optim's kernels stepping one flat parameter buffer.

torch.optim's functional API (fused where torch has a fused kernel; tests/training/test_trainer.py
holds them to the optimizer classes), without the Python bookkeeping ``Optimizer.step()`` does on
every step, which bench/trainers.py measured at most of autograd's cost over this path.

Which fused kernels exist depends on the device and the torch release: Adam and SGD have CPU
and CUDA kernels from torch 2.4 on; Adagrad's CPU kernel came in 2.4, its CUDA kernel only in
2026 (pytorch#153038, #177672); RMSprop has none. Rather than a table of releases that drifts,
``fused_kernel`` asks the installed torch once per optimizer and device, by one step of
``torch.optim``'s own class with ``fused=True``, and the single-tensor loop runs where it says no.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, partial

import torch
from torch.optim.adagrad import adagrad
from torch.optim.adam import adam
from torch.optim.rmsprop import rmsprop
from torch.optim.sgd import sgd

from hpsearch.config import TrainConfig


class FlatOptimizer:
    """Steps of the configured optimizer on one flat parameter tensor.

    torch.optim's functional API: the kernels of torch.optim's SGD, Adam, Adagrad and RMSprop
    (fused where torch has a fused kernel; tests/training/test_trainer.py holds them to the classes),
    without the Python bookkeeping that ``Optimizer.step()`` does on every step.
    """

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, cfg: TrainConfig) -> None:
        p, g, lr, decay = [param], [grad], cfg.lr, cfg.weight_decay
        fused = fused_kernel(cfg.optimizer, param.device.type)
        foreach = None if fused else False  # the plain single-tensor loop where there is no fused kernel
        # the step count: fused kernels read it on the device; the plain loop reads it on the CPU
        steps = [torch.zeros((), dtype=torch.float32, device=param.device if fused else "cpu")]

        def zeros() -> list[torch.Tensor]:
            return [torch.zeros_like(param)]

        self.step: Callable[[], None]
        if cfg.optimizer == "adam":
            self.step = partial(
                adam, p, g, zeros(), zeros(), [], steps, fused=fused, foreach=foreach, amsgrad=False, beta1=0.9,
                beta2=0.999, lr=lr, weight_decay=decay, eps=1e-8, maximize=False,
            )  # fmt: skip
        elif cfg.optimizer == "sgd":
            buffers: list[torch.Tensor | None] = [None]  # the first step allocates SGD's momentum
            self.step = partial(
                sgd, p, g, buffers, fused=fused, foreach=foreach, momentum=cfg.momentum, dampening=0.0, nesterov=False,
                lr=lr, weight_decay=decay, maximize=False,
            )  # fmt: skip
        elif cfg.optimizer == "adagrad":
            self.step = partial(
                adagrad, p, g, zeros(), steps, fused=fused, foreach=foreach, lr_decay=0.0, eps=1e-10,
                lr=lr, weight_decay=decay, maximize=False,
            )  # fmt: skip
        else:  # rmsprop has no fused kernel; on one tensor its plain loop is a few kernels anyway
            self.step = partial(
                rmsprop, p, g, zeros(), [], [], [torch.zeros(())], foreach=False, alpha=0.99, eps=1e-8,
                momentum=0.0, centered=False, lr=lr, weight_decay=decay, maximize=False,
            )  # fmt: skip

    def set_lr(self, lr: float) -> None:
        """Take steps of ``lr`` from now on (a partial of the partial: no cost per step)."""
        self.step = partial(self.step, lr=lr)  # type: ignore[call-arg]  # the wrapped optimizer takes lr


@cache
def fused_kernel(optimizer: str, device: str) -> bool:
    """Whether the installed torch has a fused kernel of ``optimizer`` on ``device`` (``cpu``, ``cuda``).

    One step of the functional optimizer on a two-element tensor says so (not ``torch.optim``'s
    class, whose ``step`` imports torch._dynamo and, with it, sympy's warning filters).
    """
    param, grad = torch.zeros(2, device=device), torch.ones(2, device=device)
    step, state = [torch.zeros((), device=device)], [torch.zeros_like(param)]
    try:
        if optimizer == "adam":
            adam([param], [grad], state, [torch.zeros_like(param)], [], step, fused=True, amsgrad=False, beta1=0.9,
                 beta2=0.999, lr=0.1, weight_decay=0.0, eps=1e-8, maximize=False)  # fmt: skip
        elif optimizer == "sgd":
            sgd([param], [grad], [None], fused=True, momentum=0.9, dampening=0.0, nesterov=False, lr=0.1,
                weight_decay=0.0, maximize=False)  # fmt: skip
        elif optimizer == "adagrad":
            adagrad([param], [grad], state, step, fused=True, lr_decay=0.0, eps=1e-10, lr=0.1, weight_decay=0.0,
                    maximize=False)  # fmt: skip
        else:
            return False
    except (RuntimeError, ValueError):  # NotImplementedError is a RuntimeError: no kernel for this device
        return False
    return True


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (from 0) under ``cfg.lr_schedule``."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2
    return cfg.lr
