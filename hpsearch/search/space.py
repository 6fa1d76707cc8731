"""The search space: an Optuna trial and the study's ParamSpecs -> one TrainConfig.

This is the only module that calls ``trial.suggest_*``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import optuna

from hpsearch.config import INT_FIELDS, ParamSpec, TrainConfig


def suggest(trial: optuna.Trial, space: tuple[ParamSpec, ...], base: TrainConfig) -> TrainConfig:
    """Sample every entry of ``space`` and lay the values over ``base``.

    Args:
        trial: the Optuna trial that records the sampled values as its params.
        space: validated ParamSpecs (see ``config.validate``).
        base: the study's fixed training settings.
    """
    values: dict[str, Any] = {}
    for spec in space:
        if spec.choices is not None:
            values[spec.name] = trial.suggest_categorical(spec.name, list(spec.choices))
        elif spec.name in INT_FIELDS:
            assert spec.low is not None and spec.high is not None  # validated ranges
            step = int(spec.step) if spec.step is not None else 1
            values[spec.name] = trial.suggest_int(spec.name, int(spec.low), int(spec.high), step=step, log=spec.log)
        else:
            assert spec.low is not None and spec.high is not None
            values[spec.name] = trial.suggest_float(
                spec.name, float(spec.low), float(spec.high), step=spec.step, log=spec.log
            )
    return replace(base, **values)
