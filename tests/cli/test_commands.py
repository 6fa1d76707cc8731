"""The commands around the three: predict, export, studies, init, --set, --version, one --storage."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hpsearch
from tests.conftest import STUDY_ARGS, FinalTested, run_cli

ROOT = Path(__file__).resolve().parents[2]


def _idx(path: Path, images: np.ndarray) -> Path:
    header = b"\x00\x00\x08" + bytes([images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape)
    path.write_bytes(gzip.compress(header + images.astype(np.uint8).tobytes()))
    return path


def _predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"predicted": str})


def test_predict_reads_npz_and_idx_images_and_gives_the_bundles_predictions(
    tested_digits: FinalTested, tmp_path: Path
) -> None:
    raw = np.rint(tested_digits.test_x * 16).reshape(-1, 8, 8)  # the data set's own pixels, 0..16
    expected = hpsearch.load_model(tested_digits.folder).predict(raw)
    np.savez(tmp_path / "images.npz", images=raw, y=tested_digits.test_y)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", raw)
    for data in (
        tmp_path / "images.npz",
        tmp_path / "t10k-images-idx3-ubyte.gz",
        tmp_path,
    ):  # a folder: its test images
        out = tmp_path / "predictions.csv"
        assert run_cli("predict", tested_digits.folder / "model.safetensors", data, "--out", out) == 0
        frame = _predictions(out)
        assert list(frame.columns) == ["row", "predicted", *(f"p_{c}" for c in range(10))]
        assert list(frame["predicted"]) == list(expected)
        np.testing.assert_allclose(frame.filter(like="p_").sum(axis=1), 1.0, rtol=1e-5)


def test_predict_reads_a_table_by_its_column_names(
    tested_table: FinalTested, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"px{i}" for i in range(64)]
    frame = pd.DataFrame(tested_table.test_x, columns=names).assign(kind="ignored")
    frame[["kind", *names[::-1]]].to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert run_cli("predict", tested_table.folder, tmp_path / "new.csv") == 0  # CSV on stdout
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    doc = json.loads((tested_table.folder / "final_test.json").read_text())
    classes = np.asarray(hpsearch.load_model(tested_table.folder).classes)
    accuracy = float((printed["predicted"].to_numpy() == classes[tested_table.test_y]).mean())
    assert accuracy == pytest.approx(doc["metrics"]["test"]["accuracy"])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or folder"),
        ("few_columns", "the model takes 64 feature columns, but 1 are missing: px63"),
        ("image_size", "the model takes 8x8 images, but these are 28x28"),
        ("npz_size", "the model takes 8x8 images, but these are 4x4"),
        ("not_a_model", "not an hpsearch model bundle"),
    ],
)
def test_data_that_do_not_fit_exit_2_with_one_line(
    case: str,
    message: str,
    tested_digits: FinalTested,
    tested_table: FinalTested,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data = tested_digits.folder, tmp_path / "data.csv"
    if case == "few_columns":
        model = tested_table.folder
        pd.DataFrame(tested_table.test_x[:, :63], columns=[f"px{i}" for i in range(63)]).to_csv(data, index=False)
    elif case == "image_size":
        data = _idx(tmp_path / "images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
    elif case == "npz_size":
        data = tmp_path / "images.npz"
        np.savez(data, x=np.zeros((3, 4, 4)))
    elif case == "not_a_model":
        model = tmp_path / "model.safetensors"
        model.write_text("{}")
    capsys.readouterr()
    assert run_cli("predict", model, data) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_export_writes_onnx(tested_digits: FinalTested, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("export", tested_digits.folder, "--onnx", tmp_path / "m.onnx") == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000 and capsys.readouterr().err == ""


def test_studies_lists_each_study_of_a_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "two.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "2", "--pruner", "none", "--storage", db) == 0
    args = ("--trials", "1", "--pruner", "none", "--storage", db, "--study-name", "loss-study")
    assert run_cli("study", *STUDY_ARGS, "--metric", "loss", *args) == 0
    capsys.readouterr()
    assert run_cli("studies", db, "--format", "json") == 0
    rows = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"digits", "loss-study"}
    assert rows["digits"]["complete"] == 2 and rows["loss-study"]["trials"] == 1
    assert rows["digits"]["metric"] == "cv_accuracy" and rows["loss-study"]["metric"] == "cv_loss"
    assert rows["digits"]["data set"] == "digits" and 0 < rows["digits"]["best value"] <= 1
    assert run_cli("studies", db) == 0
    assert "loss-study" in capsys.readouterr().out
    assert run_cli("studies", "--storage", f"sqlite:///{db}") == 0
    assert "loss-study" in capsys.readouterr().out
    assert run_cli("studies", tmp_path / "none.db") == 2
    assert "no such study file" in capsys.readouterr().err


def test_set_overrides_a_definition_field_and_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    sets: tuple[str, ...] = ("--set", "train.dropout=0.2", "--set", "space.width.high=64")
    sets += ("--set", "train.lr_schedule='cosine'", "--set", "pruner.name=race", "--set", "pruner.wave_folds=3")
    sets += ("--set", "sampler.startup_trials=3")
    assert run_cli("study", *STUDY_ARGS, *sets, "--trials", "1", "--storage", db) == 0
    defn = hpsearch.build_report(str(db)).summary  # readable
    assert len(defn)
    from hpsearch.store import load_study, stored_run

    stored, _ = stored_run(load_study(f"sqlite:///{db}", None))
    assert stored.train.dropout == 0.2 and stored.train.lr_schedule == "cosine"
    assert (stored.pruner.name, stored.pruner.wave_folds, stored.sampler.startup_trials) == ("race", 3, 3)
    assert next(s for s in stored.space if s.name == "width").high == 64
    for bad, message in [
        ("train.dropout=1.5", "train.dropout must be a number in [0, 1), but got 1.5"),
        ("train.dropot=0.1", "did you mean 'dropout'"),
        ("train.depth=2", "fixes train.depth, but the definition searches it"),
        ("dropout", "--set takes section.key=value"),
    ]:
        capsys.readouterr()
        assert run_cli("study", *STUDY_ARGS, "--set", bad, "--storage", tmp_path / "x.db") == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.db").exists() or (tmp_path / "x.db").stat().st_size == 0


def test_init_writes_a_definition_that_study_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init") == 0 and Path("default.toml").read_text() == (ROOT / "studies/default.toml").read_text()
    assert run_cli("init", "fashion-mnist", "--out", "f.toml") == 0
    assert Path("f.toml").read_text() == (ROOT / "studies/fashion-mnist.toml").read_text()
    assert run_cli("init") == 2 and "exists already" in capsys.readouterr().err
    # a definition naming a table beside it, run from another folder: its path resolves against the file
    (tmp_path / "defs").mkdir()
    rows = np.random.default_rng(0).normal(size=(60, 3))
    pd.DataFrame(rows, columns=["a", "b", "c"]).assign(y=[0, 1, 2] * 20).to_csv("defs/toy.csv", index=False)
    text = Path("default.toml").read_text().replace('dataset = "mnist-5k"', 'dataset = "table"\npath = "toy.csv"')
    Path("defs/toy.toml").write_text(text.replace("[data]", '[data]\ntarget = "y"', 1))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    args = ("--config", "../defs/toy.toml", "--folds", "2", "--epochs", "1", "--trials", "1", "--pruner", "none")
    assert run_cli("study", *args, "--quiet", "--storage", "t.db") == 0
    assert [r["study"] for r in hpsearch.list_studies("t.db").to_dict(orient="records")] == ["toy"]  # the file's stem


def test_the_packaged_definitions_are_the_repositorys() -> None:
    for name in ("default", "fashion-mnist"):
        packaged = ROOT / "hpsearch" / "studies" / f"{name}.toml"
        assert packaged.read_text() == (ROOT / "studies" / f"{name}.toml").read_text()


def test_version_and_help_texts(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # help on one line per option
    assert run_cli("--version") == 0 and capsys.readouterr().out.strip() == f"hpsearch {hpsearch.__version__}"
    assert run_cli("study", "--help") == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "Finished trials (complete or pruned)" in text and "after an epoch" in text and "--set" in text


def test_report_takes_a_path_in_storage_and_json_writes_no_files(
    small_study: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert run_cli("report", "--storage", small_study[0], "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["study"] == "digits" and doc["out_dir"] is None and doc["files"] == []
    assert not (tmp_path / "reports").exists()
    assert run_cli("report", "--storage", small_study[0], "--format", "json", "--out", "r") == 0
    assert "report.html" in json.loads(capsys.readouterr().out)["files"] and (tmp_path / "r/report.html").exists()
