"""The MLP every trial trains: sizes from the data, depth and width from the trial."""

from __future__ import annotations

from itertools import pairwise

from torch import nn


def layer_sizes(n_in: int, n_out: int, depth: int, width: int) -> list[int]:
    """Input, ``depth`` hidden layers of ``width`` units, output."""
    return [n_in] + [width] * depth + [n_out]


def count_params(n_in: int, n_out: int, depth: int, width: int) -> int:
    """Weights and biases of the MLP."""
    sizes = layer_sizes(n_in, n_out, depth, width)
    return sum(a * b + b for a, b in pairwise(sizes))


def count_macs(n_in: int, n_out: int, depth: int, width: int) -> int:
    """Multiply-adds of one forward pass for one row: one per weight."""
    sizes = layer_sizes(n_in, n_out, depth, width)
    return sum(a * b for a, b in pairwise(sizes))


def build_mlp(n_in: int, n_out: int, depth: int, width: int, dropout: float = 0.0) -> nn.Sequential:
    """An MLP with ReLU after each hidden layer, Kaiming-normal weights and zero biases.

    Args:
        n_in: feature count (784 for a 28x28 image).
        n_out: class count; the output is logits, softmax lives in the loss.
        depth: hidden layers; 0 gives multinomial logistic regression.
        width: units per hidden layer.
        dropout: dropout probability after each hidden ReLU (0: none).
    """
    sizes = layer_sizes(n_in, n_out, depth, width)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < depth:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    model = nn.Sequential(*layers)
    model.apply(_init_weights)
    return model


def _init_weights(module: nn.Module) -> None:
    # Kaiming-normal keeps the variance of ReLU activations steady through the layers
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)
