"""The MLP every trial trains (sizes from the data, depth and width from the trial), alone or K stacked."""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
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


def build_mlp(
    n_in: int, n_out: int, depth: int, width: int, dropout: float = 0.0, *, generator: torch.Generator
) -> nn.Sequential:
    """An MLP with ReLU after each hidden layer, Kaiming-normal weights and zero biases.

    Args:
        n_in: feature count (784 for a 28x28 image).
        n_out: class count; the output is logits, softmax lives in the loss.
        depth: hidden layers; 0 gives multinomial logistic regression.
        width: units per hidden layer.
        dropout: dropout probability after each hidden ReLU (0: none).
        generator: draws the initial weights; torch's global generator is never touched (a caller
            that only loads weights into the network may pass ``torch.Generator()``).
    """
    sizes = layer_sizes(n_in, n_out, depth, width)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(_linear(a, b))
        if i < depth:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    model = nn.Sequential(*layers)
    for module in model:
        if isinstance(module, nn.Linear):
            _init_weights(module, generator)
    return model


def _linear(n_in: int, n_out: int) -> nn.Linear:
    """An ``nn.Linear`` whose parameters are allocated, not yet drawn: ``nn.Linear(a, b)`` draws its
    default weights from torch's global generator (the caller's); on the meta device it draws nothing."""
    layer = nn.Linear(n_in, n_out, device="meta")
    layer.weight = nn.Parameter(torch.empty(n_out, n_in))
    layer.bias = nn.Parameter(torch.empty(n_out))
    return layer


def _init_weights(module: nn.Linear, generator: torch.Generator) -> None:
    # Kaiming-normal keeps the variance of ReLU activations steady through the layers
    nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
    nn.init.zeros_(module.bias)


class StackedMLP(nn.Module):
    """K MLPs of one architecture; input (K, B, in) -> logits (K, B, out).

    Args:
        weights: per layer (K, in, out); the module shares their storage, not a copy.
        biases: per layer (K, 1, out).
        dropout: dropout probability after each hidden ReLU.
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor], dropout: float = 0.0) -> None:
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(w.detach(), requires_grad=False) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b.detach(), requires_grad=False) for b in biases)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, in) -> (K, B, out); a one-model StackedMLP also takes (B, in) -> (B, out)."""
        if x.dim() == 2:
            one: torch.Tensor = self(x.unsqueeze(0))
            return one.squeeze(0)
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
        model = build_mlp(n_in, n_out, len(self.weights) - 1, width, self.dropout, generator=torch.Generator())
        linears = [m for m in model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases, strict=True):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
        return model.to(self.weights[0].device)
