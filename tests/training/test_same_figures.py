"""Fold figures: held to a recording within float32's rounding across CPUs, and bit for bit on one machine.

``main_fold_figures.json`` holds every fold's loss and metrics of ``cross_validate`` on digits
(3 folds, 2 epochs; four optimizers, dropout, input dropout and label smoothing, the cosine
schedule, weight decay, and digits as a table file of numbers: imputed and standardized per fold,
``standardize`` in the recording), so that no change moves them unnoticed. Re-record it, when a
change moves them on purpose, with ``python -m tests.training.test_same_figures``.

Why a tolerance: another CPU's matrix kernels (AVX2 against AVX-512, another blocking in MKL or
oneDNN) sum float32 products in another order, so a fold's loss after two epochs differs in the
7th or 8th significant digit (seen: 0.402662992477417 against 0.4026629626750946 on another AMD
EPYC). A relative 1e-5 on losses is a hundred times that and still catches any real change.
A prediction that flips on a row at the decision boundary moves accuracy by one row of the
validation fold (1/479 here), and a macro precision, recall or F1 by at most a few tenths of a
point (one row of a class of ~48 rows, over 10 classes): the metrics get that much.

Dropout masks are another matter: they are torch's bernoulli draws from a seeded generator, and
torch releases have drawn other bits from the same seed (torch 2.4 against 2.13: every dropout
case off by percents). The recording keeps a sample draw; where this torch draws another, the
dropout cases are skipped, saying so, and the others still hold.

What must hold bit for bit holds on one machine: the same trial twice in one process, and in a
second process (the tests below).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from hpsearch.config import CVConfig, DataConfig, TrainConfig
from hpsearch.data import Dataset, load_training
from hpsearch.training import cross_validate, make_splits
from tests.conftest import as_table

_FILE = Path(__file__).with_name("main_fold_figures.json")
_RECORDED = json.loads(_FILE.read_text())
_LOSS_RTOL = 1e-5  # float32 rounding across CPU kernels, times a hundred
_MACRO_ATOL = 0.01  # a macro figure when one row's prediction flips

_CASES: dict[str, tuple[TrainConfig, bool]] = {  # name -> (training settings, standardized)
    "adam": (TrainConfig(depth=2, width=64, optimizer="adam", lr=1e-3, epochs=2), False),
    "sgd_dropout_cosine": (
        TrainConfig(
            depth=1,
            width=32,
            optimizer="sgd",
            lr=0.05,
            lr_schedule="cosine",
            weight_decay=1e-4,
            dropout=0.2,
            batch_size=50,
            epochs=2,
        ),
        False,
    ),
    "rmsprop_deep": (TrainConfig(depth=3, width=48, optimizer="rmsprop", lr=1e-3, batch_size=128, epochs=2), False),
    "adagrad": (TrainConfig(depth=1, width=40, optimizer="adagrad", lr=0.05, epochs=2, seed=7), False),
    "adam_smoothing_input_dropout": (
        TrainConfig(depth=2, width=32, lr=2e-3, input_dropout=0.2, label_smoothing=0.1, dropout=0.1, epochs=2),
        False,
    ),
}
_CASES |= {f"{name}_standardized": (cfg, True) for name, (cfg, _) in list(_CASES.items())[:4]}


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_training(DataConfig(dataset="digits"))[0]


def _figures(digits: Dataset, case: str) -> list[dict[str, float]]:
    cfg, standardized = _CASES[case]
    splits = make_splits(digits.y, CVConfig(folds=3, seed=0))
    return cross_validate(as_table(digits) if standardized else digits, splits, cfg).folds


def test_the_recording_covers_every_case() -> None:
    assert sorted(_RECORDED["cases"]) == sorted(_CASES)
    for name, (cfg, standardized) in _CASES.items():  # recorded with these very settings
        assert _RECORDED["cases"][name]["train"] == _settings(cfg)
        assert _RECORDED["cases"][name]["standardize"] == standardized


def _dropout_draw() -> str:
    """A sample of the masks this torch draws: 64 bernoulli(0.5) draws from a generator seeded 0."""
    return "".join(str(int(b)) for b in torch.empty(64).bernoulli_(0.5, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("case", sorted(_CASES))
def test_fold_figures_are_those_recorded_within_float32_rounding(digits: Dataset, case: str) -> None:
    cfg = _CASES[case][0]
    if (cfg.dropout > 0 or cfg.input_dropout > 0) and _dropout_draw() != _RECORDED["dropout_draw"]:
        pytest.skip(f"torch {torch.__version__} draws other dropout masks than torch {_RECORDED['torch']} did")
    recorded: list[dict[str, float]] = _RECORDED["cases"][case]["folds"]
    folds = _figures(digits, case)
    splits = make_splits(digits.y, CVConfig(folds=3, seed=0))
    assert len(folds) == len(recorded)
    for k, (got, want) in enumerate(zip(folds, recorded, strict=True)):
        one_row = 1 / len(splits[k][1])
        assert got["loss"] == pytest.approx(want["loss"], rel=_LOSS_RTOL), f"fold {k + 1}"
        assert got["accuracy"] == pytest.approx(want["accuracy"], abs=one_row * 1.001), f"fold {k + 1}"
        for name in ("precision", "recall", "f1"):
            assert got[name] == pytest.approx(want[name], abs=_MACRO_ATOL), f"fold {k + 1} {name}"


def test_the_same_trial_twice_in_one_process_gives_the_same_bits(digits: Dataset) -> None:
    for case in ("sgd_dropout_cosine", "adam_smoothing_input_dropout"):
        assert _figures(digits, case) == _figures(digits, case)


def test_a_second_process_gives_the_same_bits(digits: Dataset) -> None:
    here = {case: _figures(digits, case) for case in ("sgd_dropout_cosine", "adagrad_standardized")}
    code = (
        "import json, sys\n"
        "from tests.training.test_same_figures import _figures, load_training, DataConfig\n"
        "d = load_training(DataConfig(dataset='digits'))[0]\n"
        "json.dump({c: _figures(d, c) for c in sys.argv[1:]}, sys.stdout)\n"
    )
    root = Path(__file__).parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code, *here], cwd=root, capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(out.stdout) == here  # JSON floats round-trip exactly


def _settings(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k != "device"}


def _record() -> None:
    """Write the figures of this build to main_fold_figures.json (run as a module, on purpose)."""
    digits = load_training(DataConfig(dataset="digits"))[0]
    cases = {
        name: {"train": _settings(cfg), "standardize": standardized, "folds": _figures(digits, name)}
        for name, (cfg, standardized) in _CASES.items()
    }
    doc = {"recorded": sys.argv[1] if len(sys.argv) > 1 else "", "data": "digits", "folds": 3, "cv_seed": 0}
    doc |= {"torch": torch.__version__, "dropout_draw": _dropout_draw()}
    _FILE.write_text(json.dumps(doc | {"cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    _record()
