"""model.safetensors: a round trip with dropout, a table of numbers and one as it comes (text, missing values),
each giving what the fitted preprocessing and MLP give; ONNX equal to torch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from hpsearch.data import load_split, preprocess
from hpsearch.data.inputs import InputSpec
from hpsearch.data.table import typed
from hpsearch.errors import DataError
from hpsearch.store import load_study, stored_run
from hpsearch.training import build_mlp
from hpsearch.training.bundle import Header, load_bundle, save_bundle
from hpsearch.training.export import to_onnx
from tests.conftest import FinalTested, onnx_feeds, penguin_rows


def _header(sizes: tuple[int, ...], dropout: float) -> Header:
    return Header(
        sizes=sizes,
        dropout=dropout,
        classes=tuple("abc"),
        input=InputSpec(kind="image", n_features=sizes[0], image_shape=(2, 2), pixel_max=16.0),
        dataset="toy",
        fingerprint="0" * 64,
        study="toy",
        trial=3,
    )


@pytest.mark.parametrize("depth", [0, 2])
def test_a_model_with_dropout_reloads_to_the_same_predictions(tmp_path: Path, depth: int) -> None:
    # dropout renumbers nn.Sequential's layers: a state_dict of this model does not load into a
    # dropout-free one, but the bundle numbers Linear layers only
    model = build_mlp(4, 3, depth, 8, dropout=0.5, generator=torch.Generator()).eval()
    sizes = (4, *([8] * depth), 3)
    save_bundle(tmp_path / "m.safetensors", model, _header(sizes, 0.5), np.zeros(4), np.full(4, 16.0))
    loaded = load_bundle(tmp_path / "m.safetensors")
    x = np.random.default_rng(0).uniform(0, 16, size=(20, 4)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x / 16.0)), dim=1).numpy()
    np.testing.assert_allclose(loaded.predict_proba(x), expected, rtol=1e-5, atol=1e-6)
    assert list(loaded.predict(x)) == [("abc")[i] for i in expected.argmax(axis=1)]
    assert loaded.header.trial == 3 and loaded.header.dropout == 0.5


def test_a_format_1_table_model_still_reads_its_columns_by_name(tmp_path: Path) -> None:
    # a table model written before tables had text and missing values: numbers scaled by input.shift/scale
    model = build_mlp(2, 3, 1, 4, generator=torch.Generator()).eval()
    spec = InputSpec(kind="table", n_features=2, feature_names=("a", "b"))
    header = replace(_header((2, 4, 3), 0.0), input=spec)
    save_bundle(tmp_path / "m.safetensors", model, header, np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    loaded = load_bundle(tmp_path / "m.safetensors")
    with torch.no_grad():
        expected = torch.softmax(model(torch.tensor([[0.5, 0.5]])), dim=1).numpy()
    np.testing.assert_allclose(loaded.predict_proba(pd.DataFrame({"b": [4.0], "a": [2.0]})), expected, rtol=1e-6)
    with pytest.raises(DataError, match="missing values, which this model"):
        loaded.predict(pd.DataFrame({"a": [np.nan], "b": [1.0]}))


def test_the_header_is_json_in_the_safetensors_metadata(tested_digits: FinalTested) -> None:
    with safe_open(str(tested_digits.folder / "model.safetensors"), framework="pt") as f:
        header = json.loads(f.metadata()["hpsearch"])
        keys = set(f.keys())
    doc = json.loads((tested_digits.folder / "final_test.json").read_text())
    assert header["format"] == "hpsearch-model/1" and header["study"] == "digits" and header["trial"] == doc["trial"]
    assert header["fingerprint"] == doc["fingerprint"] and header["classes"] == [str(c) for c in range(10)]
    assert header["input"] == {
        "kind": "image",
        "n_features": 64,
        "feature_names": None,
        "categorical": [],
        "image_shape": [8, 8],
        "pixel_max": 16.0,
    }
    assert header["test"]["intervals"] == doc["intervals"] and set(header["versions"]) >= {"torch", "optuna"}
    assert {"input.shift", "input.scale", "linear.0.weight"} <= keys


def test_the_digits_bundle_gives_final_tests_figures(tested_digits: FinalTested) -> None:
    loaded = load_bundle(tested_digits.folder)
    doc = json.loads((tested_digits.folder / "final_test.json").read_text())
    raw = tested_digits.test_x * 16.0  # the bundle takes the data set's raw pixels, 0..16
    accuracy = float((loaded.predict(raw) == tested_digits.test_y.astype(str)).mean())
    assert accuracy == pytest.approx(doc["metrics"]["test"]["accuracy"])


def test_a_table_bundle_applies_its_scaler_and_reads_columns_by_name(tested_table: FinalTested) -> None:
    loaded = load_bundle(tested_table.folder / "model.safetensors")
    doc = json.loads((tested_table.folder / "final_test.json").read_text())
    names = [f"px{i}" for i in range(64)]
    assert loaded.header.input.feature_names == tuple(names)
    stats = doc["preprocessing"]["numeric"]
    np.testing.assert_allclose(loaded.preprocess.shift.numpy(), [stats[n]["mean"] for n in names], rtol=1e-6)
    np.testing.assert_allclose(loaded.preprocess.scale.numpy(), [stats[n]["scale"] for n in names], rtol=1e-6)
    # columns in another order, and a label column: read by name, the label ignored
    frame = pd.DataFrame(tested_table.test_x, columns=names)[names[::-1]].assign(kind="?")
    predicted = loaded.predict(frame)
    classes = np.asarray(loaded.classes, dtype=object)
    assert float((predicted == classes[tested_table.test_y]).mean()) == pytest.approx(
        doc["metrics"]["test"]["accuracy"]
    )
    np.testing.assert_array_equal(predicted, loaded.predict(tested_table.test_x))
    with pytest.raises(DataError, match="the model takes 64 feature columns, but 1 are missing: px0"):
        loaded.predict(frame.drop(columns="px0"))


def test_not_a_bundle_is_refused(tmp_path: Path, tested_digits: FinalTested) -> None:
    (tmp_path / "x.safetensors").write_bytes(b"not at all")
    with pytest.raises(DataError, match="not an hpsearch model bundle"):
        load_bundle(tmp_path / "x.safetensors")
    with pytest.raises(DataError, match="no such model file"):
        load_bundle(tmp_path / "missing.safetensors")
    with pytest.raises(DataError, match="rows of 64 features"):
        load_bundle(tested_digits.folder).predict(np.zeros((3, 63)))


def test_a_table_bundle_gives_what_the_fitted_preprocessing_and_mlp_give(tested_penguins: FinalTested) -> None:
    # raw rows with a missing number, a missing text and an unseen island, against scikit-learn's own
    # ColumnTransformer fitted as final-test fitted it (on the whole training split)
    loaded = load_bundle(tested_penguins.folder)
    doc = json.loads((tested_penguins.folder / "final_test.json").read_text())
    train, test = load_split(stored_run(load_study(f"sqlite:///{tested_penguins.db}", None))[0].data)
    assert train.table is not None and test.table is not None
    fitted = preprocess.fit(train.table)
    rows = penguin_rows(tested_penguins)
    table = replace(test.table, frame=typed(rows, train.table.columns, "rows"))
    with torch.no_grad():
        expected = torch.softmax(loaded.module(torch.from_numpy(preprocess.inputs(fitted, table))), dim=1).numpy()
    np.testing.assert_allclose(loaded.predict_proba(rows[list(rows.columns)[::-1]]), expected, rtol=1e-5, atol=1e-6)
    assert loaded.header.preprocessing is not None
    assert loaded.header.preprocessing.to_dict() == doc["preprocessing"]
    assert loaded.header.input.categorical == ("island", "sex")
    with safe_open(str(tested_penguins.folder / "model.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["hpsearch"])["format"] == "hpsearch-model/2"
    predicted = loaded.predict(test.table.frame)
    assert float((predicted == np.asarray(loaded.classes)[test.y]).mean()) == doc["metrics"]["test"]["accuracy"]


@pytest.mark.parametrize("which", ["tested_digits", "tested_table"])  # penguins: tests/cli/test_penguins.py
def test_onnx_gives_the_predictions_of_torch(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    tested: FinalTested = request.getfixturevalue(which)
    loaded = load_bundle(tested.folder)
    raw = tested.test_x * np.float32(loaded.header.input.pixel_max)
    to_onnx(loaded, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    [proba] = session.run(["probabilities"], onnx_feeds(loaded.header.input, raw))
    np.testing.assert_allclose(proba, loaded.predict_proba(raw), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), loaded.predict_proba(raw).argmax(axis=1))
