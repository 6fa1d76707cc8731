"""Data sources: named sets, IDX folders, the tutorials' pickle, table files; split and fingerprint."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from hpsearch.config import DataConfig
from hpsearch.data import FASHION_MNIST_DIR, fingerprint, load_split, load_training
from hpsearch.errors import DataError


def _digits_frame() -> pd.DataFrame:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"px{i}" for i in range(64)])
    frame["label"] = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[
        digits.target
    ]
    return frame


def write_idx(folder: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Write the four MNIST-style IDX .gz files (images as n x 28 x 28 or n x h x w bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in (
        ("train-images-idx3-ubyte", x_train),
        ("train-labels-idx1-ubyte", y_train),
        ("t10k-images-idx3-ubyte", x_test),
        ("t10k-labels-idx1-ubyte", y_test),
    ):
        a = np.ascontiguousarray(array, dtype=np.uint8)
        header = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(header + a.tobytes())


def test_digits_hold_out_is_stratified_scaled_and_fixed() -> None:
    train, test = load_split(DataConfig(dataset="digits"))
    assert (len(train.y), len(test.y)) == (1437, 360)
    assert train.x.dtype == np.float32 and train.x.min() >= 0 and train.x.max() == 1.0
    summary = load_training(DataConfig(dataset="digits"))[1]
    assert summary["test_split"] == "hold-out 20%"
    assert summary["fingerprint"] == fingerprint(train, test)  # the search's fingerprint covers the test rows
    train_share = np.bincount(train.y) / len(train.y)
    test_share = np.bincount(test.y) / len(test.y)
    assert np.abs(train_share - test_share).max() < 0.01
    assert fingerprint(*load_split(DataConfig(dataset="digits"))) == fingerprint(train, test)
    assert fingerprint(*load_split(DataConfig(dataset="digits", split_seed=1))) != fingerprint(train, test)


def test_mnist_5k_is_the_default_and_bundled() -> None:
    train, test = load_split(DataConfig())
    assert train.name == "mnist-5k"
    assert (len(train.y), len(test.y), train.n_features, train.n_classes) == (4000, 1000, 784, 10)
    assert train.x.min() >= 0.0 and train.x.max() <= 1.0


def test_csv_with_string_labels(tmp_path: Path) -> None:
    path = tmp_path / "digits.csv"
    _digits_frame().to_csv(path, index=False)
    data, _ = load_training(DataConfig(dataset="table", path=str(path), target="label"))
    assert set(data.classes) == {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert data.table is not None  # tables are preprocessed per fold, on the training folds only
    assert data.name == "digits"  # named after the file's stem


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_parquet_and_npz_tables(tmp_path: Path, suffix: str) -> None:
    frame = _digits_frame()
    path = tmp_path / f"digits{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, pixels=frame.drop(columns="label").to_numpy(), label=frame["label"].to_numpy().astype(str))
    data, _ = load_training(DataConfig(dataset="table", path=str(path), target="label"))
    assert (data.n_features, data.n_classes) == (64, 10)


def test_no_test_row_enters_the_training_split(tmp_path: Path) -> None:
    frame = _digits_frame()
    frame["row_id"] = np.arange(len(frame))  # a unique feature identifies every row
    path = tmp_path / "ids.csv"
    frame.to_csv(path, index=False)
    train, test = load_split(DataConfig(dataset="table", path=str(path), target="label"))
    row_id = list(frame.columns.drop("label")).index("row_id")
    train_ids, test_ids = set(train.x[:, row_id]), set(test.x[:, row_id])
    assert not train_ids & test_ids
    assert len(train_ids | test_ids) == len(frame)


@pytest.mark.parametrize(
    ("frame_change", "target", "message"),
    [
        (None, "lable", "no column 'lable'.*did you mean 'label'"),
        ("text", "label", "column 'note' holds one value \\('x'\\) on every training row"),
        ("nan", "label", "column 'label' has no label on 1 of 1797 rows"),
    ],
)
def test_bad_tables_are_refused(tmp_path: Path, frame_change: str | None, target: str, message: str) -> None:
    frame = _digits_frame()
    if frame_change == "text":
        frame["note"] = "x"
    if frame_change == "nan":
        frame.loc[3, "label"] = np.nan
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        load_training(DataConfig(dataset="table", path=str(path), target=target))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_training(DataConfig(dataset="table", path=str(tmp_path / "nope.csv"), target="y"))


def test_idx_folder_keeps_the_official_split(tmp_path: Path) -> None:
    digits = load_digits()
    images = (digits.images * 255 / 16).astype(np.uint8)
    write_idx(tmp_path / "idx", images[:1500], digits.target[:1500], images[1500:], digits.target[1500:])
    train, test = load_split(DataConfig(dataset="mnist", path=str(tmp_path / "idx")))
    assert (len(train.y), len(test.y), train.n_features) == (1500, 297, 64)
    assert load_training(DataConfig(dataset="mnist", path=str(tmp_path / "idx")))[1]["test_split"] == "official"
    np.testing.assert_array_equal(test.y, digits.target[1500:])
    np.testing.assert_allclose(train.x[0], images[0].ravel() / 255.0, rtol=1e-6)


def test_tutorial_pickle_train_plus_valid_then_test(tmp_path: Path) -> None:
    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    y = digits.target.astype(np.int64)
    parts = ((x[:1000], y[:1000]), (x[1000:1400], y[1000:1400]), (x[1400:], y[1400:]))
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f)
    train, test = load_split(DataConfig(dataset="mnist", path=str(path)))
    assert (len(train.y), len(test.y)) == (1400, 397)
    np.testing.assert_array_equal(test.x, x[1400:])


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((_Evil(), np.zeros(1)), (np.zeros((1, 1)), np.zeros(1)), (np.zeros((1, 1)), np.zeros(1))), f)
    with pytest.raises(DataError, match=r"refusing posix\.system"):
        load_training(DataConfig(dataset="mnist", path=str(path)))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package() -> None:
    train, test = load_split(DataConfig(dataset="fashion-mnist"))
    assert (len(train.y), len(test.y), train.n_features, train.n_classes) == (60000, 10000, 784, 10)
    assert train.x.max() == 1.0


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_a_pickle_of_numpy_arrays_loads_at_every_protocol(tmp_path: Path, protocol: int) -> None:
    digits = load_digits()
    x, y = (digits.data / 16).astype(np.float32), digits.target.astype(np.int64)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((x[:1000], y[:1000]), (x[1000:1400], y[1000:1400]), (x[1400:], y[1400:])), f, protocol=protocol)
    train, test = load_split(DataConfig(dataset="mnist", path=str(path)))
    np.testing.assert_array_equal(test.x, x[1400:])
    np.testing.assert_array_equal(train.y, y[:1400])
