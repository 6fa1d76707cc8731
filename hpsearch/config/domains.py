"""One table of field domains, and the check of a whole definition against it.

Every value a user can type (a ``[train]`` value, both ends of a ``[space]`` range, each of its
choices, a command-line option) is checked against the same ``DOMAINS`` entry, so a value that
is refused fixed is refused searched too. ``validate`` gathers every problem into one
ConfigError that says what must hold and what was given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hpsearch.config.records import (
    CLASS_WEIGHTS,
    COLUMN_LISTS,
    DATASETS,
    FINAL_MODELS,
    INT_FIELDS,
    LR_SCHEDULES,
    METRICS,
    OFFICIAL_SPLIT,
    OPTIMIZERS,
    PRUNERS,
    RACE_RULES,
    SAMPLERS,
    DataConfig,
    Definition,
    ParamSpec,
    TrainConfig,
)
from hpsearch.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Domain:
    """What one field allows: a whole number, a real number or one of some names, within bounds."""

    kind: type  # int, float or str
    low: float | None = None  # smallest allowed value
    high: float | None = None  # largest allowed value
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False  # high itself is not allowed
    names: tuple[str, ...] | None = None  # the allowed names of a str field

    def describe(self) -> str:
        """``a whole number >= 1``, ``a number in [0, 1)``, ``one of adam, sgd``."""
        if self.names is not None:
            return f"one of {', '.join(self.names)}"
        what = "a whole number" if self.kind is int else "a number"
        low, high = (
            None if v is None else f"{int(v)}" if self.kind is int else f"{v:g}" for v in (self.low, self.high)
        )
        if low is not None and high is not None:
            return f"{what} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if low is not None:
            return f"{what} {'>' if self.low_open else '>='} {low}"
        return what

    def problem(self, where: str, value: Any, name: str) -> str | None:
        """None when ``value`` is in the domain, else the sentence that says what must hold.

        ``where`` names the value in the user's words (``space.lr.low``), ``name`` the field.
        """
        if self.names is not None:
            if value in self.names:
                return None
            place = "" if where == name else f" in {where}"
            return f"unknown {name.split('.')[-1]} {value!r}{place}{did_you_mean(str(value), self.names)}"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (self.kind is int and not isinstance(value, int)) or not math.isfinite(value):
            return f"{where} must be {self.describe()}, but got {value!r}"
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"{where} must be {self.describe()}, but got {value!r}" if below or above else None


DOMAINS: dict[str, Domain] = {
    "seed": Domain(int, low=0, high=2**32 - 1),  # numpy's SeedSequence takes non-negative entropy
    "metric": Domain(str, names=METRICS),
    "sampler.name": Domain(str, names=SAMPLERS),
    "sampler.startup_trials": Domain(int, low=0),
    "sampler.ei_candidates": Domain(int, low=1),
    "pruner.name": Domain(str, names=PRUNERS),
    "pruner.startup_trials": Domain(int, low=0),
    "pruner.warmup_epochs": Domain(int, low=0),
    "pruner.percentile": Domain(float, low=0, high=100, low_open=True),
    "pruner.p_threshold": Domain(float, low=0, high=1, low_open=True),
    "pruner.startup_steps": Domain(int, low=0),
    "pruner.reduction_factor": Domain(int, low=2),
    "pruner.wave_folds": Domain(int, low=1),
    "pruner.race_rule": Domain(str, names=RACE_RULES),
    "final.model": Domain(str, names=FINAL_MODELS),
    "final.keep": Domain(int, low=1),
    "data.dataset": Domain(str, names=DATASETS),
    "data.test_size": Domain(float, low=0, high=1, low_open=True, high_open=True),
    "data.split_seed": Domain(int, low=0, high=2**32 - 1),
    "data.max_categories": Domain(int, low=2),
    "cv.folds": Domain(int, low=2),
    "cv.repeats": Domain(int, low=1),
    "train.depth": Domain(int, low=1),
    "train.width": Domain(int, low=1),
    "train.optimizer": Domain(str, names=OPTIMIZERS),
    "train.lr": Domain(float, low=0, low_open=True),
    "train.lr_schedule": Domain(str, names=LR_SCHEDULES),
    "train.momentum": Domain(float, low=0, high=1, high_open=True),
    "train.weight_decay": Domain(float, low=0),
    "train.dropout": Domain(float, low=0, high=1, high_open=True),
    "train.input_dropout": Domain(float, low=0, high=1, high_open=True),
    "train.label_smoothing": Domain(float, low=0, high=1, high_open=True),
    "train.class_weight": Domain(str, names=CLASS_WEIGHTS),
    "train.batch_size": Domain(int, low=1),
    "train.epochs": Domain(int, low=1),
}


def check(where: str, value: Any, problems: list[str], *, field: str | None = None) -> None:
    """Append the problem of ``value`` against the domain of ``field`` (default ``where``), if any."""
    name = field or where
    found = DOMAINS[name].problem(where, value, name)
    if found is not None:
        problems.append(found)


def validate(defn: Definition) -> None:
    """Check every value of a definition against ``DOMAINS``; raise one ConfigError naming them all.

    Raises:
        ConfigError: when any fixed value, either end of a range, or a choice is out of its domain.
    """
    problems: list[str] = []
    _validate_data(defn.data, problems)
    check("cv.folds", defn.cv.folds, problems)
    check("cv.repeats", defn.cv.repeats, problems)
    for name in ("seed", "metric"):
        check(name, getattr(defn, name), problems)
    for section in ("sampler", "pruner", "final"):
        for key, value in dataclasses.asdict(getattr(defn, section)).items():
            if f"{section}.{key}" in DOMAINS:
                check(f"{section}.{key}", value, problems)
    check_train(defn.train, problems)
    names = [spec.name for spec in defn.space]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"space.{name} is given twice")
    for spec in defn.space:
        _validate_spec(spec, problems)
    if problems:
        raise ConfigError("; ".join(problems))


def check_train(train: TrainConfig, problems: list[str]) -> None:
    """Append the problem of every training setting out of its domain (fixed values too where [space]
    searches them: a definition holds no bad value); a tuple of class weights, each a number > 0."""
    for name in DOMAINS:
        if not name.startswith("train."):
            continue
        value = getattr(train, name[6:])
        if name == "train.class_weight" and isinstance(value, tuple):
            bad = [w for w in value if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w < math.inf]
            if bad:
                problems.append(f"class weights must be numbers > 0, but got {bad[0]!r}")
        else:
            check(name, value, problems)


def _validate_data(d: DataConfig, problems: list[str]) -> None:
    check("data.dataset", d.dataset, problems)
    if d.dataset in ("mnist", "table") and not d.path:
        problems.append(f"data set {d.dataset!r} needs a file: give --data PATH")
    if d.dataset == "table" and not d.target:
        problems.append("a table file needs its label column: give --target COLUMN")
    if d.dataset != "table" and d.target is not None:
        problems.append(f"--target names the label column of a table file, but the data set is {d.dataset!r}")
    check("data.test_size", d.test_size, problems)
    check("data.split_seed", d.split_seed, problems)
    if d.groups is not None and d.dataset != "table":
        problems.append(f"--groups names a column of a table file, but the data set is {d.dataset!r}")
    elif d.groups is not None and d.groups == d.target:
        problems.append(f"--groups {d.groups!r} is the label column (--target); give the column of the rows' groups")
    if d.dataset in OFFICIAL_SPLIT and d.test_size != DataConfig().test_size:
        problems.append(f"{d.dataset} has an official test split, so --test-size does not apply (got {d.test_size})")
    check("data.max_categories", d.max_categories, problems)
    _validate_columns(d, problems)


def _validate_columns(d: DataConfig, problems: list[str]) -> None:
    """``[data] categorical``, ``numeric`` and ``drop``: a table's columns, each in one list at most, never the
    target. (Whether the data are a table that has them is for the data layer, once every option is applied.)"""
    seen: dict[str, str] = {}
    for key in COLUMN_LISTS:
        names: tuple[str, ...] = getattr(d, key)
        for name in names:
            if name == d.target:
                problems.append(f"data.{key} lists {name!r}, the label column (--target)")
            elif name in seen:
                problems.append(f"column {name!r} is in both data.{seen[name]} and data.{key}")
            seen.setdefault(name, key)


def _validate_spec(spec: ParamSpec, problems: list[str]) -> None:
    where, field = f"space.{spec.name}", f"train.{spec.name}"
    domain = DOMAINS[field]
    if spec.choices is not None:
        for i, choice in enumerate(spec.choices):
            check(f"{where}.choices[{i}]", choice, problems, field=field)
        return
    if domain.names is not None:
        problems.append(f"{where} must list choices ({', '.join(domain.names)}), not a range")
        return
    low, high = spec.low, spec.high
    before = len(problems)
    check(f"{where}.low", low, problems, field=field)
    check(f"{where}.high", high, problems, field=field)
    if len(problems) > before or low is None or high is None:
        return
    if low > high:
        problems.append(f"{where} must have low <= high, but got {low=}, {high=}")
    if spec.log and low <= 0:
        problems.append(f"{where} is on a log scale, so low must be > 0, but got {low=}")
    if spec.step is not None:
        _check_step(where, spec, problems)


def _check_step(where: str, spec: ParamSpec, problems: list[str]) -> None:
    step = spec.step
    if spec.log:
        problems.append(f"{where} cannot have both log and step")
    elif not isinstance(step, int | float) or isinstance(step, bool) or not math.isfinite(step) or step <= 0:
        problems.append(f"{where}.step must be a number > 0, but got {step!r}")
    elif spec.name in INT_FIELDS and not isinstance(step, int):
        problems.append(f"{where} is a whole number, so step must be a whole number, but got {step!r}")
