"""Devices, tensors, and the one evaluation: a model's loss and predictions, under no_grad in eval mode."""

from __future__ import annotations

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


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and predicted classes of ``model`` on ``(x, y)``, in eval mode.

    ``model`` maps (rows, features) to (rows, classes) logits: an MLP, or one model of a StackedMLP.

    Returns:
        The loss (NaN if the model's outputs are not finite) and the arg-max predictions.
    """
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])
    model.train(was_training)
    return float(F.cross_entropy(logits, y)), logits.argmax(dim=1).cpu().numpy()
