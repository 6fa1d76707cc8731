"""A study is one definition: what decides a figure is stored and checked; where the data lie is not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from hpsearch.store.schema import STUDY_DEFINITION, STUDY_VERSIONS
from tests.conftest import STUDY_ARGS, run_cli

_TABLE = ("--folds", "3", "--epochs", "1", "--pruner", "none", "--quiet", "--target", "label")


def _digits_csv(path: Path, noise: float = 0.0) -> Path:
    digits = load_digits()
    pixels = digits.data[:400] + noise
    pd.DataFrame(pixels, columns=[f"p{i}" for i in range(64)]).assign(label=digits.target[:400]).to_csv(
        path, index=False
    )
    return path


def test_a_relative_and_an_absolute_path_to_the_same_file_are_one_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _digits_csv(tmp_path / "x.csv")
    assert run_cli("study", "--data", "./x.csv", *_TABLE, "--trials", "1") == 0
    assert run_cli("study", "--data", str(tmp_path / "x.csv"), *_TABLE, "--trials", "2") == 0
    (name,) = optuna.get_all_study_names("sqlite:///study.db")  # one study, not two
    assert len(optuna.load_study(study_name=name, storage="sqlite:///study.db").trials) == 2


def test_final_test_finds_moved_data_by_fingerprint_and_refuses_other_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _digits_csv(tmp_path / "x.csv")
    assert run_cli("study", "--data", "x.csv", *_TABLE, "--trials", "1") == 0
    (tmp_path / "moved").mkdir()
    shutil.move(tmp_path / "x.csv", tmp_path / "moved" / "y.csv")
    capsys.readouterr()
    assert run_cli("final-test") == 2  # the stored path is gone
    assert "no such file or folder: x.csv" in capsys.readouterr().err
    assert run_cli("final-test", "--data", "moved/y.csv", "--out", "a") == 0
    assert (tmp_path / "a" / "final_test.json").exists()
    _digits_csv(tmp_path / "other.csv", noise=0.5)
    capsys.readouterr()
    assert run_cli("final-test", "--data", "other.csv", "--out", "b") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "the data differ" in lines[0] and "fingerprint" in lines[0]
    assert not (tmp_path / "b").exists()


def test_another_sampler_option_on_resume_is_refused(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    stored = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}").user_attrs[STUDY_DEFINITION]
    assert stored["sampler"] == {  # written out, not left to Optuna's defaults
        "name": "tpe", "startup_trials": 10, "multivariate": True, "constant_liar": True, "ei_candidates": 24
    }  # fmt: skip
    assert stored["pruner"]["name"] == "none"
    definition = tmp_path / "d.toml"
    definition.write_text("[sampler]\nstartup_trials = 5\n")
    args = (*STUDY_ARGS, "--pruner", "none", "--trials", "6", "--storage", f"sqlite:///{db}", "--config", definition)
    assert run_cli("study", *args) == 2
    line = capsys.readouterr().err.strip()
    assert "sampler.startup_trials=10" in line and "sampler.startup_trials=5" in line
    assert len(optuna.load_study(study_name="digits", storage=f"sqlite:///{db}").trials) == 4


def test_a_resume_under_other_library_versions_says_so_in_one_line(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
    versions = study.user_attrs[STUDY_VERSIONS]
    assert set(versions) == {"hpsearch", "torch", "optuna", "scikit-learn", "numpy"}
    study.set_user_attr(STUDY_VERSIONS, {**versions, "torch": "2.4.0"})
    capsys.readouterr()
    assert run_cli("study", *STUDY_ARGS, "--pruner", "none", "--trials", "5", "--storage", f"sqlite:///{db}") == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: study 'digits' was created under other library versions")
    assert f"torch 2.4.0 -> {versions['torch']}" in lines[0]


def test_an_empty_batch_of_one_fold_is_no_divergence() -> None:
    import torch

    from hpsearch.config import TrainConfig
    from hpsearch.training import Trainer

    # folds of 5 and 2 rows in 5 steps of batch 1: the second model has no row in 3 of the steps
    x, y = torch.rand(7, 4), torch.tensor([0, 1, 0, 1, 0, 1, 0])
    trainer = Trainer(x, y, [torch.arange(5), torch.arange(5, 7)], 2, TrainConfig(depth=1, width=3, batch_size=1))
    losses = trainer.run_epoch()
    assert all(np.isfinite(losses))
