"""One model's training and evaluation."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hpsearch.config import DataConfig, Optimizer, TrainConfig
from hpsearch.data import load_split
from hpsearch.errors import TrainingDiverged
from hpsearch.training import evaluate, fit
from hpsearch.training.metrics import classification_metrics
from tests.training.reference import textbook_fit


@pytest.fixture(scope="module")
def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    train, test = load_split(DataConfig(dataset="digits"))
    return torch.from_numpy(train.x), torch.from_numpy(train.y), torch.from_numpy(test.x), torch.from_numpy(test.y)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "rmsprop"])
def test_every_optimizer_learns(tensors: tuple[torch.Tensor, ...], optimizer: Optimizer) -> None:
    x, y, xt, yt = tensors
    losses: list[float] = []
    lr = {"sgd": 0.05, "adam": 1e-3, "adagrad": 0.05, "rmsprop": 1e-3}[optimizer]
    cfg = TrainConfig(depth=2, width=64, optimizer=optimizer, lr=lr, epochs=3)
    model = fit(x, y, 10, cfg, on_epoch=lambda e, loss, _: losses.append(loss[0]))
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


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "rmsprop"])
def test_fit_trains_what_autograd_and_torch_optim_train(
    tensors: tuple[torch.Tensor, ...], optimizer: Optimizer
) -> None:
    x, y = tensors[0][:1000], tensors[1][:1000]  # 21 batches: 13 of 48 rows and 8 of 47, padded to 48
    cfg = TrainConfig(depth=2, width=48, optimizer=optimizer, lr=0.01, weight_decay=1e-3, batch_size=48, epochs=2)
    fast, textbook = fit(x, y, 10, cfg), textbook_fit(x, y, 10, cfg)
    for a, b in zip(fast.parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # RMSprop amplifies rounding


def test_fit_with_dropout_trains_what_autograd_trains(tensors: tuple[torch.Tensor, ...]) -> None:
    x, y = tensors[0][:960], tensors[1][:960]  # 20 batches of 48: no padding, so the same masks are drawn
    cfg = TrainConfig(depth=2, width=48, dropout=0.4, lr=0.01, batch_size=48, epochs=2)
    fast, textbook = fit(x, y, 10, cfg), textbook_fit(x, y, 10, cfg)
    for a, b in zip(fast.parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("dropout", "input_dropout", "label_smoothing"), [(0.0, 0.2, 0.0), (0.0, 0.0, 0.1), (0.3, 0.2, 0.1)]
)
def test_input_dropout_and_label_smoothing_train_what_autograd_trains(
    tensors: tuple[torch.Tensor, ...], dropout: float, input_dropout: float, label_smoothing: float
) -> None:
    x, y = tensors[0][:960], tensors[1][:960]
    cfg = TrainConfig(
        depth=2, width=48, lr=0.01, batch_size=48, epochs=2,
        dropout=dropout, input_dropout=input_dropout, label_smoothing=label_smoothing,
    )  # fmt: skip
    fast, textbook = fit(x, y, 10, cfg), textbook_fit(x, y, 10, cfg)
    for a, b in zip(fast.parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    plain = fit(x, y, 10, dataclasses.replace(cfg, input_dropout=0.0, label_smoothing=0.0))  # same hidden dropout
    assert not torch.allclose(next(fast.parameters()), next(plain.parameters()), atol=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_cosine_schedule_steps_as_torch_cosine_annealing(
    tensors: tuple[torch.Tensor, ...], optimizer: Optimizer
) -> None:
    x, y = tensors[0][:960], tensors[1][:960]
    cfg = TrainConfig(depth=1, width=32, optimizer=optimizer, lr=0.05, lr_schedule="cosine", batch_size=96, epochs=4)
    fast, textbook = fit(x, y, 10, cfg), textbook_fit(x, y, 10, cfg)
    for a, b in zip(fast.parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    constant = fit(x, y, 10, dataclasses.replace(cfg, lr_schedule="constant"))
    assert not torch.allclose(next(fast.parameters()), next(constant.parameters()), atol=1e-4)


def test_dropout_is_seeded_and_still_learns(tensors: tuple[torch.Tensor, ...]) -> None:
    x, y, xt, yt = tensors
    cfg = TrainConfig(depth=2, width=64, dropout=0.3, lr=1e-2, epochs=3, seed=2)
    a, b, c = (
        fit(x, y, 10, cfg),
        fit(x, y, 10, cfg),
        fit(x, y, 10, TrainConfig(depth=2, width=64, lr=1e-2, epochs=3, seed=2)),
    )
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))
    assert classification_metrics(yt.numpy(), evaluate(a, xt, yt)[1], 10)["accuracy"] > 0.85
