"""Readers of the user's image files: IDX folders and the tutorials' mnist.pkl.gz (tables: ``data.table``).

Each refuses what it cannot read, by suffix and by content, with one line: a truncated or
mislabelled IDX file, images and labels of different counts, features that are not finite,
labels that are not class labels, a pickle that holds anything but numpy arrays.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hpsearch.config import PICKLE_SUFFIXES
from hpsearch.data.dataset import Loaded, pair
from hpsearch.errors import DataError

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def digit_classes(*labels: np.ndarray) -> tuple[str, ...]:
    """``("0", ..., "C-1")`` for labels 0..C-1."""
    return tuple(str(c) for c in range(int(max(y.max() for y in labels)) + 1))


# --- IDX files (MNIST, Fashion-MNIST) ---------------------------------------------------------


def _read_idx(raw: bytes, where: Path) -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{where}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{where}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{where}: IDX header promises {shape} but the file holds {data.size} bytes")
    return data.reshape(shape)


def idx_folder(name: str, folder: Path) -> Loaded:
    """The four MNIST-style IDX files (``.gz`` or not) of a folder; their test files are the test split."""
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
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if labels.ndim != 1 or images.ndim < 2 or len(images) != len(labels) or len(labels) == 0:
            raise DataError(
                f"{folder}: the {part} images ({images.shape}) and labels ({labels.shape}) do not match: "
                "each image needs one label"
            )
    x_train = arrays["x_train"].reshape(len(arrays["x_train"]), -1) / 255.0
    x_test = arrays["x_test"].reshape(len(arrays["x_test"]), -1) / 255.0
    classes = digit_classes(arrays["y_train"], arrays["y_test"])
    return pair(name, (x_train, arrays["y_train"]), (x_test, arrays["y_test"]), classes, "official")


# --- the tutorials' mnist.pkl.gz --------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, as any pickle protocol writes them, and nothing else: a pickle names
    callables, and can run code. (Protocol 5 rebuilds arrays with ``_frombuffer``; Python 3's
    protocol 2 writes their bytes through ``_codecs.encode``.)"""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        module = module.replace("numpy.core.", "numpy._core.")  # pickles from numpy 1 name the old modules
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays may be unpickled")
        return super().find_class(module, name)


def mnist_pickle(path: Path) -> Loaded:
    """``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``: train + valid train, test tests."""
    if not path.name.lower().endswith(PICKLE_SUFFIXES):
        raise DataError(f"{path}: an MNIST pickle ends in .pkl or .pkl.gz")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        parts = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read as the tutorials' mnist.pkl.gz: {e}") from None
    try:
        (x_a, y_a), (x_b, y_b), (x_c, y_c) = parts
        x_a, y_a, x_b, y_b, x_c, y_c = (np.asarray(a) for a in (x_a, y_a, x_b, y_b, x_c, y_c))
    except (TypeError, ValueError):
        raise DataError(f"{path}: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))") from None
    for what, x, y in (("train", x_a, y_a), ("valid", x_b, y_b), ("test", x_c, y_c)):
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0 or x.shape[1] != x_a.shape[1]:
            raise DataError(
                f"{path}: the {what} part must be a 2-D image array of {x_a.shape[1:]} columns and one label per row, "
                f"but got {x.shape} and {y.shape}"
            )
        _check_class_labels(path, y, what)
        _check_finite(path, x, what)
    # train + valid form the training split; the pickle's test part is the official test split
    x_tr, x_te = np.concatenate([x_a, x_b]).astype(np.float32), x_c.astype(np.float32)
    y_tr = np.concatenate([y_a, y_b])
    if x_tr.max() > 1.0:
        x_tr, x_te = x_tr / np.float32(255.0), x_te / np.float32(255.0)
    return pair("mnist", (x_tr, y_tr), (x_te, y_c), digit_classes(y_tr, y_c), "official")


def _check_class_labels(path: Path, y: np.ndarray, what: str) -> None:
    whole = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and bool(np.isfinite(y).all()) and bool((y == np.round(y)).all())
    )
    if not whole or (y < 0).any():
        raise DataError(f"{path}: the {what} labels must be class numbers 0, 1, 2, ..., but got {y[:5].tolist()}")


def _check_finite(path: Path, x: np.ndarray, what: str) -> None:
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError(f"{path}: the {what} features hold values that are not finite numbers (NaN or inf)")
