"""One model's training and evaluation."""

from __future__ import annotations

import pytest
import torch

from hpsearch.config import DataConfig, Optimizer, TrainConfig
from hpsearch.data import load
from hpsearch.errors import TrainingDiverged
from hpsearch.metrics import classification_metrics
from hpsearch.train import evaluate, fit


@pytest.fixture(scope="module")
def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load(DataConfig(dataset="digits"))
    return (
        torch.from_numpy(data.x_train),
        torch.from_numpy(data.y_train),
        torch.from_numpy(data.x_test),
        torch.from_numpy(data.y_test),
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "rmsprop"])
def test_every_optimizer_learns(tensors: tuple[torch.Tensor, ...], optimizer: Optimizer) -> None:
    x, y, xt, yt = tensors
    losses: list[float] = []
    lr = {"sgd": 0.05, "adam": 1e-3, "adagrad": 0.05, "rmsprop": 1e-3}[optimizer]
    cfg = TrainConfig(depth=2, width=64, optimizer=optimizer, lr=lr, epochs=3)
    model = fit(x, y, 10, cfg, on_epoch=lambda e, loss: losses.append(loss))
    assert len(losses) == 3 and losses[-1] < losses[0]
    _, pred = evaluate(model, xt, yt)
    assert classification_metrics(yt.numpy(), pred, 10)["accuracy"] > 0.8
    assert model.training  # evaluate restores the mode it found


def test_same_seed_same_model(tensors: tuple[torch.Tensor, ...]) -> None:
    x, y, *_ = tensors
    cfg = TrainConfig(depth=1, width=32, epochs=1, seed=5, dropout=0.2)
    a, b = fit(x, y, 10, cfg), fit(x, y, 10, cfg)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_evaluation_runs_without_gradients_in_eval_mode(tensors: tuple[torch.Tensor, ...]) -> None:
    x, y, xt, yt = tensors
    model = fit(x, y, 10, TrainConfig(depth=1, width=32, epochs=1, dropout=0.5))
    seen: list[tuple[bool, bool]] = []
    model.register_forward_hook(lambda m, i, o: seen.append((torch.is_grad_enabled(), m.training)))
    first = evaluate(model, xt, yt)
    second = evaluate(model, xt, yt)
    assert seen and set(seen) == {(False, False)}
    assert first[0] == second[0]  # dropout is off in eval mode, so evaluation is deterministic


def test_divergence_is_detected(tensors: tuple[torch.Tensor, ...]) -> None:
    x, y, *_ = tensors
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        fit(x, y, 10, TrainConfig(depth=2, width=64, optimizer="sgd", lr=1e6, epochs=2))
