"""What a trained model takes as input, and reading new rows of that kind from the user's files.

``InputSpec`` describes a model's raw input: the columns of a table (by name, numeric or
categorical) or the pixels of an image (shape and the value that loads as 1.0). ``read_inputs``
reads a file that ``study`` could read (a CSV, Parquet or NPZ table; an IDX images file or
folder; an NPZ of images): a table's columns by name, typed as the model reads them (missing
values and unseen categories are the model's to handle), images as raw float32 rows, refusing
with one line the data that do not fit. A label column or array may be present; it is ignored.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpsearch.config import TABLE_SUFFIXES, DataConfig
from hpsearch.data.dataset import Dataset
from hpsearch.data.files import _IDX_FILES, _read_idx
from hpsearch.data.table import Columns, read_table, typed
from hpsearch.errors import DataError

# The raw pixel value each image data set scales to 1.0 when it loads (data/__init__.py).
# (A full-MNIST pickle of floats in [0, 1] is the one source stored unscaled: its model takes 0..1.)
_PIXEL_MAX = {"mnist-5k": 255.0, "digits": 16.0, "fashion-mnist": 255.0, "mnist": 255.0}
_LABEL_KEYS = ("y", "label", "labels", "target", "y_train", "y_test")


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """A model's raw input: a table's named features, or an image's pixels."""

    kind: str  # "table" or "image"
    n_features: int  # the MLP's inputs: an image's pixels, a table's after its preprocessing (one per category)
    feature_names: tuple[str, ...] | None = None  # a table's feature columns, numeric ones first
    categorical: tuple[str, ...] = ()  # those of them read as text (the others are numbers)
    image_shape: tuple[int, ...] | None = None  # an image's (height, width)
    pixel_max: float = 1.0  # the raw pixel value that loads as 1.0 (images)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_features": self.n_features,
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "categorical": list(self.categorical),
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "pixel_max": self.pixel_max,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InputSpec:
        names, shape = raw.get("feature_names"), raw.get("image_shape")
        return cls(
            kind=str(raw["kind"]),
            n_features=int(raw["n_features"]),
            feature_names=None if names is None else tuple(str(n) for n in names),
            categorical=tuple(str(n) for n in raw.get("categorical", ())),
            image_shape=None if shape is None else tuple(int(s) for s in shape),
            pixel_max=float(raw.get("pixel_max", 1.0)),
        )


def input_spec(cfg: DataConfig, train: Dataset) -> InputSpec:
    """The raw input of a model trained on ``train`` (loaded from ``cfg``)."""
    if train.table is not None:
        columns = train.table.columns
        return InputSpec(
            kind="table", n_features=train.n_features, feature_names=columns.names, categorical=columns.categorical
        )
    side = math.isqrt(train.n_features)
    shape = (side, side) if side * side == train.n_features else (train.n_features,)
    return InputSpec(
        kind="image", n_features=train.n_features, image_shape=shape, pixel_max=_PIXEL_MAX.get(cfg.dataset, 1.0)
    )


def read_inputs(path: Path, spec: InputSpec) -> np.ndarray | pd.DataFrame:
    """The rows of ``path`` as the model takes them: a table's feature columns by name, typed (numbers as
    float64, text as str; missing values kept), or raw float32 image rows, shape (rows, n_features).

    Raises:
        DataError: a missing or unreadable file; columns, kinds or image sizes that do not fit ``spec``.
    """
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    name = path.name.lower()
    rows: np.ndarray | pd.DataFrame
    if path.is_dir() or ("idx" in name and not name.endswith(TABLE_SUFFIXES)):
        rows = _idx_images(path, spec)
    elif not name.endswith(TABLE_SUFFIXES):
        raise DataError(f"{path}: unknown kind of data; give a {', '.join(TABLE_SUFFIXES)} table or IDX images")
    elif spec.kind == "table":
        rows = table_rows(read_table(path), spec, str(path))
    elif name.endswith(".npz"):
        rows = _npz_images(path, spec)
    else:
        rows = _image_table(path, read_table(path), spec)
    if isinstance(rows, np.ndarray) and not np.isfinite(rows).all():
        raise DataError(f"{path}: feature values that are not finite numbers (NaN or inf)")
    if len(rows) == 0:
        raise DataError(f"{path}: no rows to predict")
    return rows


def table_rows(frame: pd.DataFrame, spec: InputSpec, where: str) -> pd.DataFrame:
    """A table model's feature columns of ``frame``, by name, typed as the model reads them.

    Raises:
        DataError: a feature column is missing, or holds text where the model reads numbers.
    """
    names = spec.feature_names or ()
    columns = Columns(tuple(n for n in names if n not in spec.categorical), spec.categorical)
    return typed(frame, columns, where)


def _image_table(path: Path, frame: pd.DataFrame, spec: InputSpec) -> np.ndarray:
    features = frame.drop(columns=[c for c in frame.columns if str(c).lower() in _LABEL_KEYS])
    if features.shape[1] != spec.n_features:
        have = features.shape[1]
        raise DataError(f"{path}: the model takes {spec.n_features} pixels a row, but the table has {have}")
    return features.to_numpy(dtype=np.float32)


def _fit_images(where: Path, images: np.ndarray, spec: InputSpec) -> np.ndarray:
    size = int(np.prod(images.shape[1:])) if images.ndim > 1 else 0
    if size != spec.n_features or (images.ndim == 3 and spec.image_shape and images.shape[1:] != spec.image_shape):
        want = "x".join(map(str, spec.image_shape or (spec.n_features,)))
        got = "x".join(map(str, images.shape[1:])) or "no image"
        raise DataError(f"{where}: the model takes {want} images, but these are {got}")
    return np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32)


def _idx_images(path: Path, spec: InputSpec) -> np.ndarray:
    if path.is_dir():  # an MNIST-style folder: its test images
        stem = _IDX_FILES["x_test"]
        found = [p for p in (path / f"{stem}.gz", path / stem) if p.exists()]
        if not found:
            raise DataError(f"{path}: no {stem}(.gz) to predict; give the IDX images file itself")
        path = found[0]
    try:
        raw = path.read_bytes()
        images = _read_idx(gzip.decompress(raw) if path.suffix == ".gz" else raw, path)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    return _fit_images(path, images, spec)


def _npz_images(path: Path, spec: InputSpec) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read as NPZ: {e}") from None
    images = [key for key, a in arrays.items() if key.lower() not in _LABEL_KEYS and a.ndim >= 2]
    if len(images) != 1:
        raise DataError(
            f"{path}: an NPZ of images holds one array of images (and perhaps labels), but found "
            f"{', '.join(f'{k} {a.shape}' for k, a in arrays.items()) or 'no array'}"
        )
    return _fit_images(path, arrays[images[0]], spec)
