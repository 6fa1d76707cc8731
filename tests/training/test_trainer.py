"""One model's training and evaluation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from hpsearch.config import DataConfig, Optimizer, TrainConfig, derive, model_streams
from hpsearch.data import load_split
from hpsearch.errors import ConfigError, TrainingDiverged
from hpsearch.training import Trainer, build_mlp, evaluate, fit
from hpsearch.training.metrics import classification_metrics
from hpsearch.training.trainer import balanced_weights
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
    pred = evaluate(model, xt, yt).pred
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


def _imbalanced(tensors: tuple[torch.Tensor, ...], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training rows of digits where classes 5-9 keep one row in eight: weights from 0.6 to 4."""
    x, y = tensors[0], tensors[1]
    keep = torch.nonzero((y < 5) | (torch.arange(len(y)) % 8 == 0)).squeeze(1)[:n]
    return x[keep], y[keep]


def test_balanced_weights_are_scikit_learns_and_need_every_class(tensors: tuple[torch.Tensor, ...]) -> None:
    _, y = _imbalanced(tensors, 480)
    expected = compute_class_weight("balanced", classes=np.arange(10), y=y.numpy())
    assert balanced_weights(y, 10).tolist() == pytest.approx(expected.tolist(), rel=1e-7)
    with pytest.raises(ConfigError, match="class 9 has none"):
        balanced_weights(y[y != 9], 10)


def _initial_mlp(cfg: TrainConfig, fold: int, n_in: int) -> nn.Sequential:
    """Fold ``fold``'s model as the trainer initialises it, from the same weights stream."""
    streams = model_streams(derive(cfg.seed, "train", fold))
    return build_mlp(n_in, 10, cfg.depth, cfg.width, generator=torch.Generator().manual_seed(streams.weights))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_the_class_weighted_loss_and_its_gradient_are_torchs_weighted_cross_entropy(
    tensors: tuple[torch.Tensor, ...], label_smoothing: float
) -> None:
    # two models stacked in one trainer, each one step over all its rows (one batch), so the
    # gradients the trainer leaves are those of the loss of that batch at the initial weights
    x, y = _imbalanced(tensors, 600)
    folds = [torch.arange(0, 400), torch.arange(200, 600)]  # two different class mixes: two weight vectors
    cfg = TrainConfig(
        depth=2, width=24, optimizer="sgd", lr=0.1, momentum=0.0, batch_size=400, epochs=1,
        class_weight="balanced", label_smoothing=label_smoothing,
    )  # fmt: skip
    trainer = Trainer(x, y, folds, 10, cfg)
    reported = trainer.run_epoch()
    assert trainer.class_weights is not None
    assert not torch.equal(trainer.class_weights[0], trainer.class_weights[1])
    for k, rows in enumerate(folds):
        weight = torch.as_tensor(compute_class_weight("balanced", classes=np.arange(10), y=y[rows].numpy()))
        torch.testing.assert_close(trainer.class_weights[k], weight.float())
        mlp = _initial_mlp(cfg, k, x.shape[1])
        logits = mlp(x[rows])
        loss = F.cross_entropy(logits, y[rows], weight=weight.float(), label_smoothing=label_smoothing)
        # the loss the trainer differentiates (its docstring's formula) is torch's weighted loss
        logp, w_row = logits.detach().log_softmax(1).double(), weight[y[rows]]
        nll = -(w_row * logp[torch.arange(len(rows)), y[rows]]).sum() / w_row.sum()
        smooth = -(logp * weight).sum() / w_row.sum()
        formula = (1 - label_smoothing) * nll + label_smoothing / 10 * smooth
        assert float(formula) == pytest.approx(loss.item(), rel=1e-5)
        # what it reports is plain cross-entropy: unweighted, unsmoothed (the loss is not a metric)
        assert reported[k] == pytest.approx(F.cross_entropy(logits, y[rows]).item(), rel=1e-5)
        loss.backward()  # type: ignore[no-untyped-call]
        linears = [m for m in mlp if isinstance(m, nn.Linear)]
        for i, linear in enumerate(linears):
            assert linear.weight.grad is not None and linear.bias.grad is not None
            torch.testing.assert_close(trainer.grad_w[i][k], linear.weight.grad.T, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(trainer.grad_b[i][k, 0], linear.bias.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("optimizer", "label_smoothing"), [("adam", 0.0), ("sgd", 0.1)])
def test_fit_with_class_weights_trains_what_autograd_trains(
    tensors: tuple[torch.Tensor, ...], optimizer: Optimizer, label_smoothing: float
) -> None:
    x, y = _imbalanced(tensors, 500)  # 11 batches of 46 or 45 rows, padded to 46
    cfg = TrainConfig(
        depth=2, width=32, optimizer=optimizer, lr=0.02, batch_size=48, epochs=2,
        class_weight="balanced", label_smoothing=label_smoothing,
    )  # fmt: skip
    fast = fit(x, y, 10, cfg)
    textbook = textbook_fit(x, y, 10, cfg)
    for a, b in zip(fast.parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    plain = fit(x, y, 10, dataclasses.replace(cfg, class_weight="none"))
    assert not torch.allclose(next(fast.parameters()), next(plain.parameters()), atol=1e-4)


def test_given_class_weights_train_as_the_balanced_ones_they_equal(tensors: tuple[torch.Tensor, ...]) -> None:
    """A weight per class (MLPClassifier's class_weight dict) weighs the loss as given; of another count, refused."""
    x, y = _imbalanced(tensors, 300)
    cfg = TrainConfig(depth=1, width=16, lr=0.02, batch_size=64, epochs=1, class_weight="balanced")
    given = tuple(balanced_weights(y, 10).tolist())
    balanced, fixed = fit(x, y, 10, cfg), fit(x, y, 10, dataclasses.replace(cfg, class_weight=given))
    for a, b in zip(balanced.parameters(), fixed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="class_weight gives 3 weights, but the data have 10 classes"):
        fit(x, y, 10, dataclasses.replace(cfg, class_weight=(1.0, 2.0, 3.0)))
