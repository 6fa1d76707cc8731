"""Training the K fold-models together computes what K separate trainings compute."""

from __future__ import annotations

import threading

import pytest
import torch

from hpsearch.config import ClassWeight, CVConfig, DataConfig, Optimizer, TrainConfig
from hpsearch.data import Dataset, load_training
from hpsearch.errors import TrainingDiverged
from hpsearch.training import evaluate, fit, steps_per_epoch
from hpsearch.training.cv import cross_validate, make_splits
from hpsearch.training.folds import FoldScore, fit_folds, fit_stacked, trains_stacked
from hpsearch.training.model import StackedMLP

_THREADS = torch.get_num_threads()


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_training(DataConfig(dataset="digits"))[0]


@pytest.mark.parametrize(
    ("optimizer", "class_weight"),
    [("sgd", "none"), ("adam", "none"), ("adagrad", "none"), ("rmsprop", "none"), ("adam", "balanced")],
)
def test_stacked_training_equals_separate_training(
    digits: Dataset, optimizer: Optimizer, class_weight: ClassWeight
) -> None:
    # 1437 rows in 4 folds: fold sizes differ (1077 or 1078), so batches are padded and masked; with
    # class weights, each fold-model weighs the classes of its own training rows
    splits = make_splits(digits.y, CVConfig(folds=4, seed=1))
    cfg = TrainConfig(
        depth=2, width=48, optimizer=optimizer, lr=0.01, batch_size=50, epochs=2, seed=3, class_weight=class_weight
    )
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    folds = [torch.from_numpy(rows) for rows, _ in splits]
    counts = [len(f) for f in folds]
    assert len(set(counts)) > 1
    stacked = fit_stacked(x, y, folds, 10, cfg)
    steps = steps_per_epoch(max(counts), cfg.batch_size)
    for k, (_, val) in enumerate(splits):
        alone = fit(x[folds[k]], y[folds[k]], 10, cfg, steps=steps, fold=k)
        together = stacked.member(k)
        for a, b in zip(alone.parameters(), together.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # RMSprop amplifies rounding
        xv, yv = torch.from_numpy(digits.x[val]), torch.from_numpy(digits.y[val])
        loss_alone, pred_alone, _ = evaluate(alone, xv, yv)
        loss_together, pred_together, _ = evaluate(together, xv, yv)
        assert loss_together == pytest.approx(loss_alone, rel=1e-4)
        assert (pred_alone == pred_together).mean() > 0.995  # a borderline row may flip on rounding


def test_one_model_of_a_stacked_mlp_evaluates_as_its_plain_network(digits: Dataset) -> None:
    splits = make_splits(digits.y, CVConfig(folds=3))
    torch.manual_seed(0)
    model = StackedMLP([torch.randn(len(splits), 64, 10) / 8], [torch.randn(len(splits), 1, 10)])
    for k, (_, val) in enumerate(splits):
        xv, yv = torch.from_numpy(digits.x[val]), torch.from_numpy(digits.y[val])
        loss, pred, _ = evaluate(model.select(k), xv, yv)
        member_loss, member_pred, _ = evaluate(model.member(k), xv, yv)
        assert loss == pytest.approx(member_loss, rel=1e-6)
        assert (pred == member_pred).all()


def test_cross_validate_reports_every_epoch_when_asked(digits: Dataset) -> None:
    splits = make_splits(digits.y, CVConfig(folds=3))
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
    splits = make_splits(digits.y, CVConfig(folds=3))
    figures_seen: list[object] = []
    cross_validate(
        digits, splits, TrainConfig(depth=1, width=32, epochs=2), on_epoch=lambda e, ls, f: figures_seen.append(f)
    )
    assert figures_seen == [None, None]


def _fold_tensors(data: Dataset, folds: int) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    splits = make_splits(data.y, CVConfig(folds=folds, seed=1))
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    return x, y, [torch.from_numpy(rows) for rows, _ in splits]


def _train_loss_score(x: torch.Tensor, y: torch.Tensor, folds: list[torch.Tensor]) -> FoldScore:
    def score(k: int, model: StackedMLP) -> dict[str, float]:
        loss, pred, _ = evaluate(model, x[folds[k]], y[folds[k]])
        return {"loss": loss, "accuracy": float((pred == y[folds[k]].numpy()).mean())}

    return score


Epochs = list[tuple[int, list[float], list[dict[str, float]] | None]]


def _fit_folds(digits: Dataset, stacked: bool, cfg: TrainConfig) -> tuple[Epochs, list[dict[str, float]]]:
    """What fit_folds hands its epoch callback, and what it returns, on 3 folds of digits."""
    x, y, folds = _fold_tensors(digits, 3)
    seen: Epochs = []
    final = fit_folds(
        x,
        y,
        folds,
        10,
        cfg,
        _train_loss_score(x, y, folds),
        on_epoch=lambda e, losses, figures: seen.append((e, losses, figures)),
        score_every_epoch=True,
        stacked=stacked,
    )
    return seen, final


@pytest.mark.parametrize("threads", [1, 2])
def test_folds_trained_in_threads_equal_folds_trained_stacked(digits: Dataset, threads: int) -> None:
    cfg = TrainConfig(depth=2, width=32, lr=0.01, batch_size=50, epochs=4, seed=4)
    stacked, stacked_final = _fit_folds(digits, True, cfg)
    assert stacked_final == stacked[-1][2]
    torch.set_num_threads(threads)  # a one-core machine: one thread trains the folds in turn
    try:
        runs = [_fit_folds(digits, False, cfg) for _ in range(3)]  # on 2 threads folds change threads, in any order
        assert torch.get_num_threads() == threads  # the threaded runs gave torch's threads back
    finally:
        torch.set_num_threads(_THREADS)
    for threaded, threaded_final in runs:
        assert [(e, len(ls), len(f or [])) for e, ls, f in threaded] == [(e, 3, 3) for e in range(4)]
        for (_, losses, figures), (_, losses_threaded, figures_threaded) in zip(stacked, threaded, strict=True):
            assert losses_threaded == pytest.approx(losses, rel=1e-4)
            for a, b in zip(figures_threaded or [], figures or [], strict=True):
                assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert threaded_final == threaded[-1][2]


def test_an_epoch_callback_that_raises_stops_the_threads(digits: Dataset) -> None:
    x, y, folds = _fold_tensors(digits, 3)
    threads_before = threading.active_count()
    epochs: list[int] = []

    def prune(epoch: int, losses: list[float], figures: list[dict[str, float]] | None) -> None:
        epochs.append(epoch)
        raise RuntimeError("pruned")

    cfg = TrainConfig(depth=1, width=16, epochs=50, batch_size=100)
    with pytest.raises(RuntimeError, match="pruned"):
        fit_folds(x, y, folds, 10, cfg, _train_loss_score(x, y, folds), on_epoch=prune, stacked=False)
    assert epochs == [0]
    assert threading.active_count() == threads_before and torch.get_num_threads() == _THREADS


def test_a_diverging_fold_in_a_thread_names_the_fold(digits: Dataset) -> None:
    x, y, folds = _fold_tensors(digits, 3)
    cfg = TrainConfig(depth=2, width=64, optimizer="sgd", lr=1e6, epochs=2)
    with pytest.raises(TrainingDiverged, match=r"epoch 1 on fold \d"):
        fit_folds(x, y, folds, 10, cfg, _train_loss_score(x, y, folds), stacked=False)


def test_folds_train_in_threads_on_a_cpu_and_stacked_on_a_gpu() -> None:
    assert not trains_stacked(torch.device("cpu"))
    assert trains_stacked(torch.device("cuda"))
