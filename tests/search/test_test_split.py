"""The search never sees the test split: noise in every test row changes no cross-validation figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hpsearch.config import derive
from hpsearch.store.schema import STUDY_DATA, TRIAL_FOLDS
from tests.conftest import run_cli


def _study(csv: Path, db: Path) -> optuna.Study:
    args = ("--data", csv, "--target", "label", "--folds", "3", "--epochs", "2", "--trials", "3", "--pruner", "none")
    assert run_cli("study", *args, "--storage", f"sqlite:///{db}", "--quiet") == 0
    return optuna.load_study(study_name=optuna.get_all_study_names(f"sqlite:///{db}")[0], storage=f"sqlite:///{db}")


def test_noise_in_every_test_row_changes_no_cv_figure(tmp_path: Path) -> None:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"p{i}" for i in range(64)]).assign(label=digits.target)
    frame.to_csv(tmp_path / "clean.csv", index=False)
    # the rows the 20% hold-out puts in the test split: it cuts by labels and seed, whatever the features
    seed = derive(0, "hold-out")
    _, test_rows = train_test_split(np.arange(len(frame)), test_size=0.2, stratify=digits.target, random_state=seed)
    noisy = frame.copy()
    noise = np.random.default_rng(1).uniform(-100, 100, size=(len(test_rows), 64))
    noisy.iloc[test_rows, :64] = noise
    noisy.to_csv(tmp_path / "noisy.csv", index=False)

    clean, dirty = _study(tmp_path / "clean.csv", tmp_path / "a.db"), _study(tmp_path / "noisy.csv", tmp_path / "b.db")
    # the data differ (the fingerprint covers the test rows) ...
    assert clean.user_attrs[STUDY_DATA]["fingerprint"] != dirty.user_attrs[STUDY_DATA]["fingerprint"]
    # ... and every trial samples and scores exactly as before, fold by fold
    assert len(clean.trials) == len(dirty.trials) == 3
    for a, b in zip(clean.trials, dirty.trials, strict=True):
        assert a.params == b.params
        assert a.user_attrs[TRIAL_FOLDS] == b.user_attrs[TRIAL_FOLDS]
        assert a.value == b.value


def test_studies_over_seeds_share_one_test_split(tmp_path: Path) -> None:
    # the hold-out is cut from the data's own seed (data.split_seed), not the study's: studies of
    # one data set repeated over seeds 0..4 touch one test split, not five
    args = ("--dataset", "digits", "--folds", "2", "--epochs", "1", "--trials", "1", "--pruner", "none", "--quiet")
    docs = []
    for seed in ("0", "1"):
        db = tmp_path / f"s{seed}.db"
        assert run_cli("study", *args, "--seed", seed, "--storage", db) == 0
        assert run_cli("final-test", "best", "--storage", db, "--out", tmp_path / f"final{seed}") == 0
        docs.append(json.loads((tmp_path / f"final{seed}" / "final_test.json").read_text()))
        study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
        docs[-1]["stored"] = study.user_attrs[STUDY_DATA]["fingerprint"]
    assert docs[0]["stored"] == docs[1]["stored"] == docs[0]["fingerprint"] == docs[1]["fingerprint"]
    assert [c["support"] for c in docs[0]["per_class"]] == [c["support"] for c in docs[1]["per_class"]]
    assert docs[0]["seed"] != docs[1]["seed"]  # two searches, one test split
