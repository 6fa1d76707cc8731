"""A table file -> a training split and a test split of raw rows, each column read as numbers or as categories.

How a column is read is decided from the training split alone, unless the definition states it
(``[data] categorical``, ``numeric``, ``drop``), and is stored with the study: a column whose
values on the training rows are all numbers (or missing) is numeric, any other categorical. The
test split and the rows given to ``predict`` are only typed to match (``typed``). A column that
cannot teach a classifier anything is refused with one line: empty on every training row, text
of a single value, text that looks like an identifier (a distinct value on almost every row), or
text of more categories than ``[data] max_categories``. A missing label is refused with a count,
never dropped.

Rows stay raw here: imputation, one-hot encoding and scaling are fitted per fold, on training
rows only (``data.preprocess``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import LabelEncoder

from hpsearch.config import TABLE_SUFFIXES, DataConfig
from hpsearch.data.dataset import Dataset, Loaded, hold_out_rows
from hpsearch.errors import DataError, did_you_mean

MISSING = ""  # a missing text value, as the preprocessing and an ONNX graph's string inputs take it
FILLED = "(missing)"  # the category a missing text value becomes: missing is a value of its own
_ID_SHARE = 0.9  # a text column distinct on this share of its training rows looks like an identifier ...
_ID_LEAST = 10  # ... once it holds this many values: a tiny table's few categories are no identifier


@dataclass(frozen=True)
class Columns:
    """How a table's feature columns are read: decided from the training split, stored with the study."""

    numeric: tuple[str, ...]  # numbers: a missing one imputed by the median, then standardized
    categorical: tuple[str, ...]  # text: a missing value is a category of its own, then one-hot encoded

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature column, numeric ones first: the order the preprocessing takes them in."""
        return (*self.numeric, *self.categorical)

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Columns:
        return cls(tuple(map(str, raw["numeric"])), tuple(map(str, raw["categorical"])))


@dataclass(frozen=True, eq=False)
class Table:
    """One split of a table: its feature columns typed as ``columns`` reads them, in ``columns.names`` order."""

    frame: pd.DataFrame  # numeric columns float64 (NaN: missing), categorical ones str (MISSING: missing)
    columns: Columns
    n_inputs: int  # the model's inputs: one per numeric column, one per category of the training split
    text_digest: bytes = b""  # SHA-256 of the split's text columns as read, for the fingerprint


def read_table(path: Path) -> pd.DataFrame:
    """A CSV, Parquet or NPZ table as pandas reads it (an NPZ's 2-D arrays become numbered columns).

    Raises:
        DataError: an unknown suffix, an empty or unreadable file.
    """
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format {suffix!r}; use {', '.join(TABLE_SUFFIXES)}")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: an NPY array, not an NPZ archive of named columns (save it with np.savez)")
        with npz:
            columns: dict[str, np.ndarray] = {}
            for key in npz.files:
                a = npz[key]
                if a.ndim == 0:
                    raise DataError(f"{path}: array {key!r} holds a single value; an NPZ table needs columns")
                columns.update(
                    {key: a} if a.ndim == 1 else {f"{key}_{i}": c for i, c in enumerate(a.reshape(len(a), -1).T)}
                )
            return pd.DataFrame(columns)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (OSError, ValueError, ImportError, AttributeError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot read as a {suffix[1:].upper()} table: {first}") from None


def table(path: Path, cfg: DataConfig) -> Loaded:
    """A table with a label column: raw, typed feature columns and a stratified hold-out test split.

    Raises:
        DataError: no such label column, missing labels, fractional or single-class labels, a
            column named in the definition that the file lacks, a column unfit to be a feature.
    """
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    target = cfg.target or ""
    if target not in frame.columns:
        names = list(frame.columns)
        raise DataError(
            f"{path}: no column {target!r} to use as --target{did_you_mean(target, names, label='columns')}"
        )
    if frame.empty:
        raise DataError(f"{path}: the table has a header but no rows")
    _check_listed(path, frame, cfg)
    y, classes = _labels(path, frame[target])
    groups = _group_codes(path, frame, cfg.groups)
    features = frame.drop(columns=[target] if cfg.groups is None else [target, cfg.groups])  # a group is no feature
    kept = features.drop(columns=[c for c in cfg.drop if c in features.columns])
    if kept.shape[1] == 0:
        raise DataError(
            f"{path}: no feature columns besides {target!r}" + (" and the dropped ones" if cfg.drop else "")
        )
    train_rows, test_rows, test_split = hold_out_rows(path.stem, y, cfg, groups, classes)
    columns = decide(kept.iloc[train_rows], cfg, str(path))
    train_frame = typed(kept.iloc[train_rows], columns, str(path))
    n_inputs = count_inputs(train_frame, columns)
    numbers = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    x = features[numbers].to_numpy(dtype=np.float64)

    def split(rows: np.ndarray, typed_frame: pd.DataFrame) -> Dataset:
        text = features.iloc[rows].drop(columns=numbers)
        part = Table(typed_frame, columns, n_inputs, digest(text) if text.shape[1] else b"")
        x_rows = np.ascontiguousarray(x[rows], dtype=np.float32)
        return Dataset(path.stem, x_rows, y[rows], classes, part, None if groups is None else groups[rows])

    test_frame = typed(kept.iloc[test_rows], columns, f"{path} (test split)")
    return split(train_rows, train_frame), split(test_rows, test_frame), test_split


def count_inputs(frame: pd.DataFrame, columns: Columns) -> int:
    """The model's inputs for training rows ``frame`` (typed): one per numeric column, one per category."""
    return len(columns.numeric) + sum(int(frame[c].replace(MISSING, FILLED).nunique()) for c in columns.categorical)


def _group_codes(path: Path, frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """Each row's group as an int64 code (in order of first appearance), from the group column."""
    if column is None:
        return None
    if column not in frame.columns:
        hint = did_you_mean(column, list(frame.columns), label="columns")
        raise DataError(f"{path}: no column {column!r} to use as --groups{hint}")
    if frame[column].isna().any():
        raise DataError(f"{path}: the group column {column!r} has missing values; every row needs its group")
    codes, _ = pd.factorize(frame[column])
    return np.asarray(codes, dtype=np.int64)


def _check_listed(path: Path, frame: pd.DataFrame, cfg: DataConfig) -> None:
    names = list(frame.columns)
    unknown = [
        f"data.{key} names no column {name!r}{did_you_mean(name, names, label=None)}"
        for key in ("categorical", "numeric", "drop")
        for name in getattr(cfg, key)
        if name not in names
    ]
    if unknown:
        raise DataError(f"{path}: " + "; ".join(unknown))


def _labels(path: Path, labels: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    target = str(labels.name)
    missing = int(labels.isna().sum())
    if missing:
        raise DataError(
            f"{path}: column {target!r} has no label on {missing} of {len(labels)} rows; "
            "label them or drop those rows (hpsearch does not guess labels)"
        )
    if pd.api.types.is_float_dtype(labels) and not (labels == labels.round()).all():
        raise DataError(
            f"{path}: column {target!r} holds fractional numbers ({labels.nunique()} distinct values); "
            "a class label is a name or a whole number: is it the right --target?"
        )
    encoder = LabelEncoder()
    y = np.asarray(encoder.fit_transform(labels.to_numpy()), dtype=np.int64)
    classes = tuple(str(c) for c in encoder.classes_)
    if len(classes) < 2:
        raise DataError(f"{path}: column {target!r} has a single class; classification needs two or more")
    return y, classes


def decide(frame: pd.DataFrame, cfg: DataConfig, where: str) -> Columns:
    """How each column of ``frame`` (the training split's feature columns) is read.

    Raises:
        DataError: naming each column that is empty, stated numeric but holding text, text of one
            value, an identifier, or of more categories than ``cfg.max_categories``.
    """
    numeric: list[str] = []
    categorical: list[str] = []
    problems: list[str] = []
    for name in frame.columns:
        values = frame[name]
        present = values[~_missing(values)]
        if present.empty:
            problems.append(f"column {name!r} is empty on every training row; drop it: [data] drop = [{name!r}]")
        elif name in cfg.numeric or (name not in cfg.categorical and _numbers(present)[1].empty):
            numeric.append(name)
            problems.extend(_text_problem(name, _numbers(values)[1]))
        else:
            categorical.append(name)
            problems.extend(_categories_problem(name, values, cfg.max_categories))
    if problems:
        raise DataError(
            f"{where}: " + "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" * (len(problems) > 3))
        )
    return Columns(tuple(numeric), tuple(categorical))


def _categories_problem(name: str, values: pd.Series, limit: int) -> list[str]:
    texts = _texts(values)
    present = texts[texts != MISSING]
    distinct = len(set(present))
    drop = f"[data] drop = [{name!r}]"
    if distinct == 1 and len(present) == len(texts):
        return [f"column {name!r} holds one value ({present[0]!r}) on every training row, which tells no class apart; "
                f"drop it: {drop}"]  # fmt: skip
    if distinct >= _ID_LEAST and distinct >= _ID_SHARE * len(present):
        return [f"column {name!r} looks like an identifier ({distinct} distinct values on {len(present)} training "
                f"rows); drop it: {drop}"]  # fmt: skip
    if distinct > limit:
        return [f"column {name!r} has {distinct} categories on the training rows, more than [data] max_categories "
                f"= {limit}; drop it ({drop}) or raise the limit"]  # fmt: skip
    return []


def typed(frame: pd.DataFrame, columns: Columns, where: str) -> pd.DataFrame:
    """``frame``'s feature columns by name (in any order; others ignored), typed as ``columns`` reads them:
    numbers as float64 with NaN where missing, text as str with MISSING where missing.

    Raises:
        DataError: a column is missing, holds text where numbers are read, or infinite numbers.
    """
    have = [str(c) for c in frame.columns]
    missing = [n for n in columns.names if n not in have]
    if missing:
        hint = did_you_mean(missing[0], have, label=None)
        raise DataError(
            f"{where}: the model takes {len(columns.names)} feature columns, but {len(missing)} are missing: "
            f"{', '.join(missing[:5])}{hint}"
        )
    frame = frame.set_axis(have, axis=1)
    out: dict[str, np.ndarray] = {}
    for name in columns.numeric:
        numbers, text = _numbers(frame[name])
        for problem in _text_problem(name, text):
            raise DataError(f"{where}: {problem}")
        if np.isinf(numbers).any():
            raise DataError(f"{where}: column {name!r} holds infinite values; replace or drop them first")
        out[name] = numbers
    out.update({name: _texts(frame[name]) for name in columns.categorical})
    return pd.DataFrame(out, index=range(len(frame)))


def _text_problem(name: str, text: pd.Series) -> list[str]:
    """What is wrong with numeric column ``name`` holding ``text`` (values that are no numbers), if anything."""
    rows = f"{len(text)} row" + "s" * (len(text) > 1)
    return [f"column {name!r} must hold numbers, but holds text on {rows} ({text.iloc[0]!r})"] if len(text) else []


def _missing(values: pd.Series) -> pd.Series:
    """Where a value is missing: NaN, None, NA, or an empty text."""
    empty = values.isna()
    if not pd.api.types.is_numeric_dtype(values):
        empty |= values.astype(object).map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return empty


def _numbers(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``values`` as float64 (NaN where missing), and those that are text, not numbers."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan), values.iloc[:0]
    present = ~_missing(values)
    parsed = pd.to_numeric(values.where(present), errors="coerce")
    return parsed.to_numpy(dtype=np.float64, na_value=np.nan), values[present & parsed.isna()]


def _texts(values: pd.Series) -> np.ndarray:
    """``values`` as str, MISSING where missing; a whole float reads as its integer (2007.0 -> "2007"),
    so a column of years reads the same with and without a missing cell."""
    empty = _missing(values).to_numpy()
    out = np.empty(len(values), dtype=object)
    for i, (v, gone) in enumerate(zip(values.to_numpy(dtype=object), empty, strict=True)):
        out[i] = MISSING if gone else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return out


def digest(text: pd.DataFrame) -> bytes:
    """SHA-256 of text columns as read: each column's name and values, None where missing."""
    h = hashlib.sha256()
    for name in text.columns:
        values = [None if v == MISSING else v for v in _texts(text[name])]
        h.update(json.dumps([name, values], ensure_ascii=False).encode())
    return h.digest()
