"""Fold figures held to a recording, so that no change moves them unnoticed.

``main_fold_figures.json`` holds every fold's loss and metrics of ``cross_validate`` on digits
(3 folds, 2 epochs; four optimizers, dropout, the cosine schedule, weight decay, a standardized
copy). It was recorded on 6e04440 and reproduced bit for bit after the package moved into
subpackages (465bebb); the seed streams of config/seeds.py then changed every initial weight on
purpose, and it was recorded again. The trainer is deterministic on one machine: bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hpsearch.config import CVConfig, DataConfig, TrainConfig
from hpsearch.data import Dataset, load_training
from hpsearch.training import cross_validate, make_splits

_RECORDED = json.loads(Path(__file__).with_name("main_fold_figures.json").read_text())


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_training(DataConfig(dataset=_RECORDED["data"]))[0]


@pytest.mark.parametrize("case", sorted(_RECORDED["cases"]))
def test_fold_figures_are_those_main_recorded(digits: Dataset, case: str) -> None:
    recorded: dict[str, Any] = _RECORDED["cases"][case]
    splits = make_splits(digits.y, CVConfig(folds=_RECORDED["folds"], seed=_RECORDED["cv_seed"]))
    data = replace(digits, standardize=recorded["standardize"])
    folds = cross_validate(data, splits, TrainConfig(**recorded["train"])).folds
    assert folds == recorded["folds"]
