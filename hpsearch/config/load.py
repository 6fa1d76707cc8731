"""Study definitions from TOML files, from what a study stored, and with command-line overrides.

Each entry point gathers every unknown key and wrong type into one ConfigError, then checks the
values against the domains (``domains.validate``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpsearch.config.domains import validate
from hpsearch.config.records import (
    DEFAULT_SPACE,
    PICKLE_SUFFIXES,
    SEARCHABLE,
    TABLE_SUFFIXES,
    CVConfig,
    DataConfig,
    Definition,
    FinalConfig,
    ParamSpec,
    PrunerConfig,
    SamplerConfig,
    TrainConfig,
)
from hpsearch.errors import ConfigError, did_you_mean

_SECTIONS = {
    "data": DataConfig, "cv": CVConfig, "train": TrainConfig, "sampler": SamplerConfig, "pruner": PrunerConfig,
    "final": FinalConfig,
}  # fmt: skip
_TOP_KEYS = ("seed", "metric", "sampler", "pruner", "final", "data", "cv", "train", "space")
_SPEC_KEYS = ("low", "high", "log", "step", "choices")


def _check_keys(where: str, given: Mapping[str, Any], known: tuple[str, ...], problems: list[str]) -> None:
    for key in given:
        if key not in known:
            problems.append(f"unknown key {key!r} in {where}{did_you_mean(key, known)}")


def _check_types(cls: type, section: str, values: Mapping[str, Any], problems: list[str]) -> None:
    defaults = cls()
    for key, value in values.items():
        expected = type(getattr(defaults, key, None))
        if expected is type(None):
            if value is not None and not isinstance(value, str):
                problems.append(f"{section}.{key} must be a string, but got {value!r}")
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        elif expected is tuple:
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                problems.append(f"{section}.{key} must be a list of column names, but got {value!r}")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{section}.{key} must be {expected.__name__}, but got {value!r}")


def _parse_spec(name: str, raw: Any, problems: list[str]) -> ParamSpec | None:
    if name not in SEARCHABLE:
        problems.append(f"unknown search-space entry {name!r}{did_you_mean(name, SEARCHABLE)}")
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


def definition_from_dict(raw: Mapping[str, Any], *, where: str = "definition") -> Definition:
    """Build and validate a Definition from TOML-shaped or stored data.

    Args:
        raw: top-level keys ``seed`` and ``metric`` and the tables ``data``, ``cv``, ``train``,
            ``space``, ``sampler`` and ``pruner`` (each optional: what is missing keeps its
            default; ``sampler = "random"`` and ``pruner = "none"`` name one without options).
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
        if name in ("sampler", "pruner") and isinstance(values, str):
            values = {"name": values}
        if not isinstance(values, Mapping):
            problems.append(f"[{name}] must be a table, but got {values!r}")
            values = {}
        known = tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("seed", "device"))
        _check_keys(f"[{name}]", values, known, problems)
        values = {k: v for k, v in values.items() if k in known}
        _check_types(cls, name, values, problems)
        sections[name] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
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
        data=DataConfig(**sections["data"]),
        cv=CVConfig(**sections["cv"], seed=seed),
        train=TrainConfig(**sections["train"], seed=seed),
        space=space,
        metric=raw.get("metric", "accuracy"),
        sampler=SamplerConfig(**sections["sampler"]),
        pruner=PrunerConfig(**sections["pruner"]),
        final=FinalConfig(**sections["final"]),
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
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return definition_from_dict(_paths_from(raw, path.parent), where=str(path))


def _paths_from(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A relative ``data.path`` of a TOML file names a file beside it, wherever the command runs."""
    data = raw.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("path"), str) or Path(data["path"]).is_absolute():
        return raw
    return {**raw, "data": {**data, "path": str(folder / data["path"])}}


def toml_shaped(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A definition as ``Definition.to_dict()`` (and a study) holds it, as the tables of a TOML file."""
    # drop the unset fields (None, log = false); not with `v not in (None, False)`: 0.0 == False
    space = {
        s["name"]: {k: v for k, v in s.items() if k != "name" and v is not None and v is not False}
        for s in raw["space"]
    }
    return {
        "seed": raw["seed"],
        "metric": raw["metric"],
        "sampler": raw["sampler"],  # a name alone in studies stored before the options were
        "pruner": raw.get("pruner", {}),  # absent in studies stored before it was part of the definition
        "final": raw.get("final", {}),  # absent in studies stored before the final model was declared
        # a study stored before split_seed cut its hold-out from the study seed (its data.seed)
        "data": {"split_seed": raw["data"].get("seed", raw["seed"])}
        | {k: v for k, v in raw["data"].items() if k != "seed"},
        "cv": {k: v for k, v in raw["cv"].items() if k != "seed"},
        "train": {k: v for k, v in raw["train"].items() if k != "seed"},
        "space": space,
    }


def stored_definition(raw: Mapping[str, Any]) -> Definition:
    """Rebuild the Definition stored on a study by ``Definition.to_dict()``."""
    return definition_from_dict(toml_shaped(raw), where="stored study definition")


def with_overrides(defn: Definition, **options: Any) -> Definition:
    """Apply command-line options (None: not given) over a definition, then validate.

    Recognised options: dataset, data (a path), target, groups (a column), test_size, folds,
    epochs, batch_size, metric, sampler (a name), pruner (a name), seed.

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
        groups=given.get("groups", data.groups),
        test_size=given.get("test_size", data.test_size),
    )
    cv = dataclasses.replace(cv, folds=given.get("folds", cv.folds))
    train = dataclasses.replace(
        train, epochs=given.get("epochs", train.epochs), batch_size=given.get("batch_size", train.batch_size)
    )
    seed = given.get("seed", defn.seed)
    defn = dataclasses.replace(
        defn,
        data=data,
        cv=dataclasses.replace(cv, seed=seed),
        train=dataclasses.replace(train, seed=seed),
        metric=given.get("metric", defn.metric),
        sampler=dataclasses.replace(defn.sampler, name=given.get("sampler", defn.sampler.name)),
        pruner=dataclasses.replace(defn.pruner, name=given.get("pruner", defn.pruner.name)),
        seed=seed,
    )
    validate(defn)
    return defn


def _infer_dataset(path: Path, current: str) -> str:
    """The data set a ``--data PATH`` names when ``--dataset`` is not given.

    Raises:
        ConfigError: a file whose suffix names no kind of data hpsearch reads.
    """
    name = path.name.lower()
    if name.endswith(TABLE_SUFFIXES):
        return "table"
    if name.endswith(PICKLE_SUFFIXES):
        return "mnist"
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"--data {path}: cannot tell what kind of data this is by its suffix; give a table "
            f"({', '.join(TABLE_SUFFIXES)}), the tutorials' mnist.pkl(.gz), or a folder of IDX files"
        )
    if current in ("fashion-mnist", "mnist"):
        return current
    return "mnist"  # a folder of IDX files
