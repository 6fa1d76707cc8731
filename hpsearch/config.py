"""Frozen configuration records, their validation, and loading of ``studies/*.toml``.

A *definition* is what makes two runs the same study: the data, the K-fold split, the fixed
training settings, the search space, the metric, the sampler and the seed. It is stored on the
study as ``asdict()`` so that ``report``, ``final-test`` and further workers rebuild it exactly.
A *run* adds what may differ between invocations of one study: storage, trial budget, device.

The built-in defaults here and ``studies/default.toml`` describe the same definition; a test
keeps them from drifting apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from hpsearch.errors import ConfigError

Optimizer = Literal["sgd", "adam", "adagrad", "rmsprop"]
LrSchedule = Literal["constant", "cosine"]
Metric = Literal["accuracy", "precision", "recall", "f1", "loss"]
Sampler = Literal["tpe", "random"]
Pruner = Literal["none", "median", "hyperband", "wilcoxon"]
Device = Literal["auto", "cpu", "cuda"]

OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)
METRICS: tuple[str, ...] = get_args(Metric)
SAMPLERS: tuple[str, ...] = get_args(Sampler)
PRUNERS: tuple[str, ...] = get_args(Pruner)
DATASETS = ("mnist-5k", "digits", "fashion-mnist", "mnist", "table")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str = "mnist-5k"  # one of DATASETS; "mnist" and "table" need a path
    path: str | None = None  # a file or folder of the user's; None: the data set's own place
    target: str | None = None  # label column of a table file
    test_size: float = 0.2  # hold-out fraction where the data set has no official test split
    seed: int = 0  # seeds the hold-out split


@dataclass(frozen=True, kw_only=True)
class CVConfig:
    folds: int = 5  # K of K-fold; 5 or 10 in practice
    seed: int = 0  # one split for every trial of a study


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    depth: int = 2  # hidden layers
    width: int = 128  # units per hidden layer
    optimizer: Optimizer = "adam"
    lr: float = 1e-3  # learning rate
    # "cosine": the rate of epoch e is lr * (1 + cos(pi * e / epochs)) / 2, torch's
    # CosineAnnealingLR(T_max=epochs) stepped once an epoch, so the last epochs take small steps
    lr_schedule: LrSchedule = "constant"
    momentum: float = 0.9  # SGD's momentum; the other optimizers ignore it
    weight_decay: float = 0.0  # L2 penalty, applied by the optimizer
    dropout: float = 0.0  # dropout after each hidden ReLU
    batch_size: int = 64  # mini-batch size
    epochs: int = 10  # passes over the training rows, as in the course material
    seed: int = 0  # seeds weight initialisation and batch order
    device: str = "cpu"  # torch device; resolved from --device, never stored in a definition


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One searched entry of the space: a range (``low``..``high``) or a list of ``choices``."""

    name: str  # a TrainConfig field
    low: float | None = None
    high: float | None = None
    log: bool = False  # sample on a log scale
    step: float | None = None  # grid step of a range
    choices: tuple[Any, ...] | None = None


DEFAULT_SPACE: tuple[ParamSpec, ...] = (
    ParamSpec(name="depth", low=1, high=4),
    ParamSpec(name="width", low=32, high=1024, log=True),
    ParamSpec(name="optimizer", choices=OPTIMIZERS),
    ParamSpec(name="lr", low=1e-4, high=1e-1, log=True),
)


@dataclass(frozen=True, kw_only=True)
class Definition:
    """Everything that makes two runs the same study."""

    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    space: tuple[ParamSpec, ...] = DEFAULT_SPACE
    metric: Metric = "accuracy"  # the objective: its CV mean is maximised (loss: minimised)
    sampler: Sampler = "tpe"
    seed: int = 0  # seeds the sampler; data, cv and train carry their own copies

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.metric == "loss" else "maximize"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the definition, as stored on the study (no device)."""
        d = dataclasses.asdict(self)
        del d["train"]["device"]
        normal: dict[str, Any] = json.loads(json.dumps(d))  # tuples -> lists, as stored
        return normal


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One invocation of ``hpsearch study``: a definition plus where and how long to run it."""

    definition: Definition = field(default_factory=Definition)
    storage: str = "sqlite:///study.db"  # any Optuna storage URL
    study_name: str = "mnist-5k"  # defaults to the data set's name
    trials: int = 50  # complete trials the study should hold when the run ends
    timeout: float | None = None  # seconds; None: no limit
    pruner: Pruner = "median"
    device: Device = "auto"
    quiet: bool = False


# --- loading and validation -------------------------------------------------------------

_SECTIONS = {"data": DataConfig, "cv": CVConfig, "train": TrainConfig}
_TOP_KEYS = ("seed", "metric", "sampler", "data", "cv", "train", "space")
_SEARCHABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("seed", "device"))
_SPEC_KEYS = ("low", "high", "log", "step", "choices")
_INT_FIELDS = ("depth", "width", "batch_size", "epochs")
_NAMED = {"optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES}  # fields that take one of these names


def _near(name: str, known: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {match[0]!r}?)" if match else f" (known: {', '.join(known)})"


def _check_keys(where: str, given: Mapping[str, Any], known: tuple[str, ...], problems: list[str]) -> None:
    for key in given:
        if key not in known:
            problems.append(f"unknown key {key!r} in {where}{_near(key, known)}")


def _check_types(cls: type, section: str, values: Mapping[str, Any], problems: list[str]) -> None:
    defaults = cls()
    for key, value in values.items():
        expected = type(getattr(defaults, key, None))
        if expected is type(None):
            if value is not None and not isinstance(value, str):
                problems.append(f"{section}.{key} must be a string, but got {value!r}")
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{section}.{key} must be {expected.__name__}, but got {value!r}")


def _parse_spec(name: str, raw: Any, problems: list[str]) -> ParamSpec | None:
    if name not in _SEARCHABLE:
        problems.append(f"unknown search-space entry {name!r}{_near(name, _SEARCHABLE)}")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"space.{name} must be a table such as {{ low = 1, high = 4 }}, but got {raw!r}")
        return None
    _check_keys(f"space.{name}", raw, _SPEC_KEYS, problems)
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            problems.append(f"space.{name}.choices must be a non-empty list, but got {choices!r}")
            return None
        return ParamSpec(name=name, choices=tuple(choices))
    if "low" not in raw or "high" not in raw:
        problems.append(f"space.{name} needs either choices or both low and high, but got {dict(raw)!r}")
        return None
    return ParamSpec(name=name, low=raw["low"], high=raw["high"], log=bool(raw.get("log", False)), step=raw.get("step"))


def _validate_spec(spec: ParamSpec, problems: list[str]) -> None:
    where = f"space.{spec.name}"
    if spec.choices is not None:
        known = _NAMED.get(spec.name)
        if known is not None:
            unknown = [c for c in spec.choices if c not in known]
            problems += [f"unknown {spec.name} {c!r} in {where}{_near(str(c), known)}" for c in unknown]
        return
    low, high = spec.low, spec.high
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or low is None or high is None:
        problems.append(f"{where} low and high must be numbers, but got {low=}, {high=}")
        return
    if spec.name in _INT_FIELDS and not (isinstance(low, int) and isinstance(high, int)):
        problems.append(f"{where} is a whole number, so low and high must be integers, but got {low=}, {high=}")
    if spec.name in _NAMED:
        problems.append(f"{where} must list choices, not a range")
    if low > high:
        problems.append(f"{where} must have low <= high, but got {low=}, {high=}")
    if spec.log and low <= 0:
        problems.append(f"{where} is on a log scale, so low must be > 0, but got {low=}")
    if spec.log and spec.step is not None:
        problems.append(f"{where} cannot have both log and step")


def validate(defn: Definition) -> None:
    """Check a definition; raise one ConfigError that names every problem found.

    Raises:
        ConfigError: when any field is out of its bounds.
    """
    problems: list[str] = []
    d, cv, t = defn.data, defn.cv, defn.train
    if d.dataset not in DATASETS:
        problems.append(f"unknown data set {d.dataset!r}{_near(d.dataset, DATASETS)}")
    if d.dataset in ("mnist", "table") and not d.path:
        problems.append(f"data set {d.dataset!r} needs a file: give --data PATH")
    if d.dataset == "table" and not d.target:
        problems.append("a table file needs its label column: give --target COLUMN")
    if not 0 < d.test_size < 1:
        problems.append(f"test_size must be between 0 and 1, but got {d.test_size=}")
    if cv.folds < 2:
        problems.append(f"folds must be at least 2, but got {cv.folds=}")
    for name, known in _NAMED.items():
        if getattr(t, name) not in known:
            problems.append(f"unknown {name} {getattr(t, name)!r}{_near(getattr(t, name), known)}")
    for name in ("depth", "width", "batch_size", "epochs"):
        if getattr(t, name) < 1:
            problems.append(f"train.{name} must be at least 1, but got {getattr(t, name)}")
    if t.lr <= 0:
        problems.append(f"train.lr must be > 0, but got {t.lr=}")
    if not 0 <= t.dropout < 1:
        problems.append(f"train.dropout must be in [0, 1), but got {t.dropout=}")
    if defn.metric not in METRICS:
        problems.append(f"unknown metric {defn.metric!r}{_near(defn.metric, METRICS)}")
    if defn.sampler not in SAMPLERS:
        problems.append(f"unknown sampler {defn.sampler!r}{_near(defn.sampler, SAMPLERS)}")
    names = [spec.name for spec in defn.space]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"space.{name} is given twice")
    for spec in defn.space:
        _validate_spec(spec, problems)
    if problems:
        raise ConfigError("; ".join(problems))


def definition_from_dict(raw: Mapping[str, Any], *, where: str = "definition") -> Definition:
    """Build and validate a Definition from TOML-shaped or stored data.

    Args:
        raw: top-level keys ``seed``, ``metric``, ``sampler`` and the tables ``data``, ``cv``,
            ``train`` and ``space`` (each optional: what is missing keeps its default).
        where: names the source in error messages.

    Raises:
        ConfigError: naming every unknown key, wrong type and out-of-range value.
    """
    problems: list[str] = []
    _check_keys(where, raw, _TOP_KEYS, problems)
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"seed must be an integer, but got {seed!r}")
        seed = 0
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, Mapping):
            problems.append(f"[{name}] must be a table, but got {values!r}")
            values = {}
        known = tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("seed", "device"))
        _check_keys(f"[{name}]", values, known, problems)
        values = {k: v for k, v in values.items() if k in known}
        _check_types(cls, name, values, problems)
        sections[name] = values
    space_raw = raw.get("space")
    space = DEFAULT_SPACE
    if space_raw is not None:
        if not isinstance(space_raw, Mapping):
            problems.append(f"[space] must be a table, but got {space_raw!r}")
        else:
            parsed = [_parse_spec(name, spec, problems) for name, spec in space_raw.items()]
            space = tuple(spec for spec in parsed if spec is not None)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    defn = Definition(
        data=DataConfig(**sections["data"], seed=seed),
        cv=CVConfig(**sections["cv"], seed=seed),
        train=TrainConfig(**sections["train"], seed=seed),
        space=space,
        metric=raw.get("metric", "accuracy"),
        sampler=raw.get("sampler", "tpe"),
        seed=seed,
    )
    try:
        validate(defn)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return defn


def load_definition(path: Path) -> Definition:
    """Read a study definition from a TOML file.

    Raises:
        ConfigError: the file is missing, is not TOML, or does not describe a valid study.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read study definition {str(path)!r}: {e.strerror or e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return definition_from_dict(raw, where=str(path))


def stored_definition(raw: Mapping[str, Any]) -> Definition:
    """Rebuild the Definition stored on a study by ``Definition.to_dict()``."""
    # drop the unset fields (None, log = false); not with `v not in (None, False)`: 0.0 == False
    space = {
        s["name"]: {k: v for k, v in s.items() if k != "name" and v is not None and v is not False}
        for s in raw["space"]
    }
    flat = {
        "seed": raw["seed"],
        "metric": raw["metric"],
        "sampler": raw["sampler"],
        "data": {k: v for k, v in raw["data"].items() if k != "seed"},
        "cv": {k: v for k, v in raw["cv"].items() if k != "seed"},
        "train": {k: v for k, v in raw["train"].items() if k != "seed"},
        "space": space,
    }
    return definition_from_dict(flat, where="stored study definition")


def with_overrides(defn: Definition, **options: Any) -> Definition:
    """Apply command-line options (None: not given) over a definition, then validate.

    Recognised options: dataset, data (a path), target, test_size, folds, epochs, batch_size,
    metric, sampler, seed.

    Raises:
        ConfigError: when the result is not a valid study, or an option fixes a setting the
            definition searches.
    """
    given = {k: v for k, v in options.items() if v is not None}
    data, cv, train = defn.data, defn.cv, defn.train
    searched = {spec.name for spec in defn.space}
    for name in ("epochs", "batch_size"):
        if name in given and name in searched:
            raise ConfigError(
                f"--{name.replace('_', '-')} fixes {name}, but the study definition searches it; "
                f"remove [space.{name}] from the definition or drop the option"
            )
    if "data" in given and "dataset" not in given:
        given["dataset"] = _infer_dataset(Path(given["data"]), data.dataset)
    data = dataclasses.replace(
        data,
        dataset=given.get("dataset", data.dataset),
        path=given.get("data", data.path if "dataset" not in given else None),
        target=given.get("target", data.target),
        test_size=given.get("test_size", data.test_size),
    )
    cv = dataclasses.replace(cv, folds=given.get("folds", cv.folds))
    train = dataclasses.replace(
        train, epochs=given.get("epochs", train.epochs), batch_size=given.get("batch_size", train.batch_size)
    )
    seed = given.get("seed", defn.seed)
    defn = dataclasses.replace(
        defn,
        data=dataclasses.replace(data, seed=seed),
        cv=dataclasses.replace(cv, seed=seed),
        train=dataclasses.replace(train, seed=seed),
        metric=given.get("metric", defn.metric),
        sampler=given.get("sampler", defn.sampler),
        seed=seed,
    )
    validate(defn)
    return defn


def _infer_dataset(path: Path, current: str) -> str:
    """The data set a ``--data PATH`` names when ``--dataset`` is not given."""
    name = path.name.lower()
    if name.endswith((".csv", ".parquet", ".pq", ".npz")):
        return "table"
    if name.endswith((".pkl", ".pkl.gz")):
        return "mnist"
    if current in ("fashion-mnist", "mnist"):
        return current
    return "mnist"  # a folder of IDX files
