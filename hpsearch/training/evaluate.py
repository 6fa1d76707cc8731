"""Devices, tensors, and the one evaluation: loss, predictions and probabilities, under no_grad in eval mode."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpsearch.errors import ConfigError

_CHUNK = 8192  # rows per forward pass: bounds the memory of the activations of a large split


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


def describe_device(name: str) -> str:
    """A resolved device in words, as a trial stores it: ``cpu``, ``cuda (NVIDIA H200)``."""
    if name.startswith("cuda"):
        return f"cuda ({torch.cuda.get_device_name(torch.device(name))})"
    return name


def as_tensors(x: np.ndarray, y: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features as float32 and labels as int64 tensors on ``device``."""
    return torch.as_tensor(x, dtype=torch.float32, device=device), torch.as_tensor(y, device=device)


class Evaluation(NamedTuple):
    """What one evaluation of a model on ``(x, y)`` gives."""

    loss: float  # mean cross-entropy; NaN if the model's outputs are not finite
    pred: np.ndarray  # the arg-max class of each row
    proba: np.ndarray  # float64 (rows, classes): the softmax of each row's logits


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Mean cross-entropy, predicted classes and class probabilities of ``model`` on ``(x, y)``, in eval mode.

    ``model`` maps (rows, features) to (rows, classes) logits: an MLP, or one model of a StackedMLP.
    The probabilities are the softmax of the logits in float64, so two rows' probabilities of a
    class tie only where their logits do (ROC AUC ranks them).
    """
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])
    model.train(was_training)
    proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
    return Evaluation(float(F.cross_entropy(logits, y)), logits.argmax(dim=1).cpu().numpy(), proba)
