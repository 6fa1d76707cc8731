"""Training the K fold-models together computes what K separate trainings compute."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from hpsearch.config import CVConfig, DataConfig, Optimizer, TrainConfig
from hpsearch.cv import cross_validate, make_splits
from hpsearch.data import Dataset, load
from hpsearch.stacked import StackedMLP, evaluate_stacked, fit_stacked, stack
from hpsearch.train import evaluate, fit, steps_per_epoch


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load(DataConfig(dataset="digits"))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "rmsprop"])
def test_stacked_training_equals_separate_training(digits: Dataset, optimizer: Optimizer) -> None:
    # 1437 rows in 4 folds: fold sizes differ (1077 or 1078), so batches are padded and masked
    splits = make_splits(digits.y_train, CVConfig(folds=4, seed=1))
    cfg = TrainConfig(depth=2, width=48, optimizer=optimizer, lr=0.01, batch_size=50, epochs=2, seed=3)
    xs = [torch.from_numpy(digits.x_train[rows]) for rows, _ in splits]
    ys = [torch.from_numpy(digits.y_train[rows]) for rows, _ in splits]
    x, counts = stack(xs)
    y, _ = stack(ys)
    assert len(set(counts)) > 1
    stacked = fit_stacked(x, y, counts, 10, cfg)
    steps = steps_per_epoch(max(counts), cfg.batch_size)
    for k, (_, val) in enumerate(splits):
        alone = fit(xs[k], ys[k], 10, replace(cfg, seed=cfg.seed + k), steps=steps)
        together = stacked.member(k)
        for a, b in zip(alone.parameters(), together.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # RMSprop amplifies rounding
        xv, yv = torch.from_numpy(digits.x_train[val]), torch.from_numpy(digits.y_train[val])
        loss_alone, pred_alone = evaluate(alone, xv, yv)
        loss_together, pred_together = evaluate(together, xv, yv)
        assert loss_together == pytest.approx(loss_alone, rel=1e-4)
        assert (pred_alone == pred_together).mean() > 0.995  # a borderline row may flip on rounding


def test_stacked_evaluation_equals_member_evaluation(digits: Dataset) -> None:
    splits = make_splits(digits.y_train, CVConfig(folds=3))
    xv, counts = stack([torch.from_numpy(digits.x_train[val]) for _, val in splits])
    yv, _ = stack([torch.from_numpy(digits.y_train[val]) for _, val in splits])
    members = [torch.nn.Sequential(torch.nn.Linear(64, 10)) for _ in splits]
    model = StackedMLP(members)
    for k, (loss, pred) in enumerate(evaluate_stacked(model, xv, yv, counts)):
        member_loss, member_pred = evaluate(model.member(k), xv[k, : counts[k]], yv[k, : counts[k]])
        assert loss == pytest.approx(member_loss, rel=1e-6)
        assert (pred == member_pred).all()


def test_cross_validate_reports_every_epoch_when_asked(digits: Dataset) -> None:
    splits = make_splits(digits.y_train, CVConfig(folds=3))
    seen: list[tuple[int, int, int]] = []
    result = cross_validate(
        digits,
        splits,
        TrainConfig(depth=1, width=32, epochs=3, lr=1e-2),
        on_epoch=lambda e, losses, figures: seen.append((e, len(losses), len(figures or []))),
        score_every_epoch=True,
    )
    assert seen == [(0, 3, 3), (1, 3, 3), (2, 3, 3)]
    assert all(f["accuracy"] > 0.5 for f in result.folds)


def test_cross_validate_scores_only_the_last_epoch_by_default(digits: Dataset) -> None:
    splits = make_splits(digits.y_train, CVConfig(folds=3))
    figures_seen: list[object] = []
    cross_validate(
        digits, splits, TrainConfig(depth=1, width=32, epochs=2), on_epoch=lambda e, ls, f: figures_seen.append(f)
    )
    assert figures_seen == [None, None]
