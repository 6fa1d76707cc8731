"""The MLP: sizes from the data, Kaiming-normal weights, zero biases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hpsearch.training.model import build_mlp, count_macs, count_params


@pytest.mark.parametrize(("depth", "width"), [(1, 32), (3, 64)])
def test_layers_follow_data_and_trial(depth: int, width: int) -> None:
    model = build_mlp(64, 10, depth, width, generator=torch.Generator())
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, width)] + [(width, width)] * (depth - 1) + [
        (width, 10)
    ]
    assert sum(isinstance(m, nn.ReLU) for m in model) == depth
    assert sum(p.numel() for p in model.parameters()) == count_params(64, 10, depth, width)
    assert count_macs(64, 10, depth, width) == sum(m.weight.numel() for m in linears)


def test_kaiming_normal_weights_and_zero_biases() -> None:
    model = build_mlp(784, 10, 1, 1024, generator=torch.Generator().manual_seed(0))
    first = model[0]
    assert isinstance(first, nn.Linear)
    assert torch.count_nonzero(first.bias) == 0
    # Kaiming-normal for ReLU: std = sqrt(2 / fan_in)
    assert first.weight.std().item() == pytest.approx((2 / 784) ** 0.5, rel=0.02)
    assert first.weight.mean().item() == pytest.approx(0.0, abs=1e-3)
