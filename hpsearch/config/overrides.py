"""``--set section.key=value``: any field of a definition from the command line, checked like the TOML.

The value is read with TOML's value syntax (``0.2``, ``true``, ``"sgd"``, ``["adam", "sgd"]``);
a bare word that is not TOML (``sgd``) is taken as a string. The whole definition is then
rebuilt by ``definition_from_dict``, so an unknown key, a wrong type or a value out of its domain
is refused with the same words as in a TOML file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

from hpsearch.config.load import definition_from_dict, toml_shaped
from hpsearch.config.records import Definition
from hpsearch.errors import ConfigError, did_you_mean

_TOP = ("seed", "metric")
_SECTIONS = ("data", "cv", "train", "space", "sampler", "pruner", "final")


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def apply_sets(defn: Definition, sets: Sequence[str]) -> Definition:
    """``defn`` with each ``section.key=value`` (or ``seed=value``) of ``sets`` applied, validated.

    ``space.NAME.low=...`` changes (or starts) a searched range; ``space.NAME={...}`` replaces the
    entry; ``train.NAME=...`` fixes a setting the definition does not search.

    Raises:
        ConfigError: a malformed item, an unknown section or key, a fixed setting that is
            searched, or a value the domain refuses.
    """
    if not sets:
        return defn
    raw = toml_shaped(defn.to_dict())
    for item in sets:
        name, eq, text = item.partition("=")
        parts = name.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set takes section.key=value (e.g. train.dropout=0.2), but got {item!r}")
        value = _value(text.strip())
        if len(parts) == 1:
            if parts[0] not in _TOP:
                raise ConfigError(f"--set {item!r}: unknown key {parts[0]!r}{did_you_mean(parts[0], _TOP + _SECTIONS)}")
            raw[parts[0]] = value
            continue
        section, key, *rest = parts
        if section not in _SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}{did_you_mean(section, _SECTIONS)}")
        if section == "space":
            entry = raw["space"].setdefault(key, {})
            if rest:
                entry[".".join(rest)] = value
            else:
                raw["space"][key] = value
            continue
        if rest:
            raise ConfigError(f"--set {item!r}: [{section}] has no nested keys")
        if section == "train" and key in raw["space"]:
            raise ConfigError(
                f"--set {item!r} fixes train.{key}, but the definition searches it; set space.{key}.low/high "
                f"(or drop the search with a definition file)"
            )
        raw[section][key] = value
    return definition_from_dict(raw, where="--set")
