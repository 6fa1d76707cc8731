"""`hpsearch study` end to end on digits: stored figures, resume, seeds, bad input, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from sklearn.datasets import load_digits

from hpsearch.config import metric_names
from hpsearch.data import FASHION_MNIST_DIR
from hpsearch.store.schema import STUDY_DATA, STUDY_DEFINITION, TRIAL_FOLDS, TRIAL_MEAN, TRIAL_REASON, TRIAL_STD
from tests.conftest import STUDY_ARGS, as_in_a_terminal, run_cli
from tests.data.test_data import write_idx


def _load(db: Path, name: str = "digits") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_three_trials_store_every_fold_and_their_mean(small_study: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "3", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    study = _load(db)
    trials = _complete(study)
    assert len(trials) == 3
    figures = ("loss", *metric_names(10))  # digits: no ROC AUC
    for t in trials:
        folds = t.user_attrs[TRIAL_FOLDS]
        assert len(folds) == 3 and all(set(f) == set(figures) for f in folds)
        for name in figures:
            values = [f[name] for f in folds]
            assert t.user_attrs[TRIAL_MEAN][name] == pytest.approx(np.mean(values))
            assert t.user_attrs[TRIAL_STD][name] == pytest.approx(np.std(values, ddof=1))
        assert t.value == t.user_attrs[TRIAL_MEAN]["accuracy"]
    definition = study.user_attrs[STUDY_DEFINITION]
    assert definition["cv"]["folds"] == 3 and definition["train"]["epochs"] == 1
    data = study.user_attrs[STUDY_DATA]
    assert (data["n_train"], data["n_test"]) == (1437, 360) and len(data["fingerprint"]) == 64


def test_running_again_continues_the_same_study(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    before = [t.params for t in _complete(_load(db))]
    assert run_cli("study", *STUDY_ARGS, "--trials", "6", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    assert "4 -> 6 finished trials" in capsys.readouterr().out
    trials = _complete(_load(db))
    assert len(trials) == 6
    assert [t.params for t in trials[:4]] == before
    assert trials[4].params not in before  # a resumed run does not replay the first run's samples
    assert run_cli("study", *STUDY_ARGS, "--trials", "6", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    assert "already holds 6 finished trials" in capsys.readouterr().out
    # the pruner is part of the study: another one on resume is refused, before any trial
    assert run_cli("study", *STUDY_ARGS, "--trials", "8", "--storage", f"sqlite:///{db}") == 2
    assert "was created with pruner.name='none'; this run asks for pruner.name='median'" in capsys.readouterr().err
    assert len(_load(db).trials) == 6


def test_a_study_stored_before_a_setting_existed_continues(small_study: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    study = _load(db)
    older = study.user_attrs[STUDY_DEFINITION]
    del older["train"]["lr_schedule"]  # what builds before the cosine schedule stored
    study.set_user_attr(STUDY_DEFINITION, older)
    assert run_cli("study", *STUDY_ARGS, "--trials", "5", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    assert len(_complete(_load(db))) == 5


def test_same_seed_gives_identical_fold_figures(small_study: tuple[Path, str], tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    assert run_cli("study", *STUDY_ARGS, "--trials", "4", "--pruner", "none", "--storage", f"sqlite:///{db}") == 0
    first, second = _load(small_study[0]).trials, _load(db).trials
    assert [t.params for t in first] == [t.params for t in second]
    assert [t.user_attrs[TRIAL_FOLDS] for t in first] == [t.user_attrs[TRIAL_FOLDS] for t in second]


def test_table_file_with_string_labels(tmp_path: Path) -> None:
    digits = load_digits()
    frame = pd.DataFrame(digits.data[:600], columns=[f"px{i}" for i in range(64)])
    frame["kind"] = np.where(digits.target[:600] % 2 == 0, "even", "odd")
    frame.to_csv(tmp_path / "parity.csv", index=False)
    db = tmp_path / "t.db"
    args = ("--data", tmp_path / "parity.csv", "--target", "kind", "--folds", "3", "--epochs", "1", "--quiet")
    assert run_cli("study", *args, "--trials", "2", "--storage", f"sqlite:///{db}") == 0
    study = _load(db, "parity")  # a table study is named after its file
    assert study.user_attrs[STUDY_DATA]["classes"] == ["even", "odd"]
    assert len(_complete(study)) == 2


def test_diverging_trial_is_pruned_with_its_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    config = tmp_path / "wild.toml"
    config.write_text(
        "sampler = 'random'\n[data]\ndataset = 'digits'\n[cv]\nfolds = 2\n[train]\nepochs = 1\n"
        "[space]\noptimizer = { choices = ['sgd'] }\nlr = { choices = [0.05, 1e6] }\ndepth = { low = 2, high = 2 }\n"
        "width = { low = 64, high = 64 }\n"
    )
    db = tmp_path / "wild.db"
    args = ("--config", config, "--trials", "6", "--pruner", "none", "--quiet", "--storage", f"sqlite:///{db}")
    assert run_cli("study", *args) == 0
    study = _load(db)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned and all(t.params["lr"] == 1e6 for t in pruned)
    assert all(t.user_attrs[TRIAL_REASON].startswith("diverged") for t in pruned)
    # a diverged trial counts towards --trials, as any pruned one; the others complete
    assert len(study.trials) == 6 and {t.params["lr"] for t in _complete(study)} == {0.05}


def test_a_space_where_every_trial_diverges_ends_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hopeless.toml"
    config.write_text(
        "[data]\ndataset = 'digits'\n[cv]\nfolds = 2\n[train]\nepochs = 1\noptimizer = 'sgd'\nlr = 1e6\n"
        "[space]\ndepth = { low = 2, high = 2 }\nwidth = { low = 16, high = 16 }\n"
    )
    db = tmp_path / "hopeless.db"
    args = ("--config", config, "--trials", "3", "--quiet", "--storage", f"sqlite:///{db}")
    assert run_cli("study", *map(str, args)) == 0
    out = capsys.readouterr().out
    assert "none of the 3 trials completed: they diverged (NaN or infinite loss) or were pruned" in out
    assert "no trial has completed yet" in out
    study = _load(db)
    assert len(study.trials) == 3
    assert all(t.user_attrs[TRIAL_REASON].startswith("diverged") for t in study.trials)


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_a_slice_of_fashion_mnist(tmp_path: Path) -> None:
    from hpsearch.config import DataConfig
    from hpsearch.data import load_split

    train, test = load_split(DataConfig(dataset="fashion-mnist"))
    images = (train.x * 255).round().astype(np.uint8).reshape(-1, 28, 28)
    tests = (test.x * 255).round().astype(np.uint8).reshape(-1, 28, 28)
    write_idx(tmp_path / "slice", images[:1000], train.y[:1000], tests[:200], test.y[:200])
    db = tmp_path / "f.db"
    args = ("--dataset", "fashion-mnist", "--data", tmp_path / "slice", "--folds", "2", "--epochs", "1", "--quiet")
    assert run_cli("study", *args, "--trials", "1", "--storage", f"sqlite:///{db}") == 0
    study = _load(db, "fashion-mnist")
    assert study.user_attrs[STUDY_DATA]["test_split"] == "official"
    assert study.best_value > 0.3  # chance is 0.1; one epoch on 500 rows


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_different_definition_is_refused_and_the_study_kept(
    small_study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    before = db.read_bytes()
    args = ("--dataset", "digits", "--folds", "4", "--epochs", "1", "--quiet", "--trials", "5")
    assert run_cli("study", *args, "--storage", f"sqlite:///{db}") == 2
    line = capsys.readouterr().err.strip()
    assert "cv.folds=3" in line and "cv.folds=4" in line and "--study-name" in line
    assert db.read_bytes() == before


def test_ctrl_c_keeps_finished_trials_and_says_how_to_resume(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    command = [sys.executable, "-m", "hpsearch", "study", *STUDY_ARGS, "--epochs", "3", "--trials", "50"]
    proc = subprocess.Popen(
        [*command, "--pruner", "none", "--storage", f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=as_in_a_terminal,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if db.exists() and _count(db, TrialState.COMPLETE) >= 2:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "run the same command again to continue" in lines[0]
    study = _load(db)
    assert len(_complete(study)) >= 2
    for t in study.trials:  # nothing is left running, and no interrupted trial counts as complete
        assert t.state in (TrialState.COMPLETE, TrialState.FAIL)
        if t.state == TrialState.COMPLETE:
            assert len(t.user_attrs[TRIAL_FOLDS]) == 3
        else:
            assert t.user_attrs[TRIAL_REASON] == "interrupted (Ctrl-C)"


def _count(db: Path, state: TrialState) -> int:
    """Trials in a state, read through a read-only connection that never locks out the worker."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as connection:
            (count,) = connection.execute("SELECT count(*) FROM trials WHERE state = ?", (state.name,)).fetchone()
            return int(count)
    except sqlite3.Error:  # the worker has not created its tables yet
        return 0


@pytest.mark.parametrize("pruner", ["median", "race"])
def test_timeout_stops_the_running_trial_and_keeps_its_folds(tmp_path: Path, pruner: str) -> None:
    # 2,000 epochs of a 256-256 MLP take far longer than the 2 s budget: the first trial is running then
    config = _write(
        tmp_path / "long.toml",
        "[data]\ndataset = 'digits'\n[cv]\nfolds = 3\n[train]\nepochs = 2000\n"
        "[space]\ndepth = { low = 2, high = 2 }\nwidth = { low = 256, high = 256 }\n",
    )
    db = tmp_path / "study.db"
    command: list[str | Path] = ["study", "--config", config, "--trials", "5", "--timeout", "2", "--pruner", pruner]
    command.append("--quiet")
    assert run_cli(*command, "--storage", f"sqlite:///{db}") == 0
    (trial,) = _load(db).trials
    assert trial.state == TrialState.PRUNED
    reason = trial.user_attrs[TRIAL_REASON]
    assert reason.startswith("stopped by --timeout after " + ("wave 1/2, " if pruner == "race" else "epoch "))
    epoch = int(reason.rsplit(" ", 1)[1].split("/")[0])
    assert 1 <= epoch < 2000
    assert len(trial.user_attrs[TRIAL_FOLDS]) == (2 if pruner == "race" else 3)  # the folds it reached, kept
    assert len(trial.intermediate_values) == epoch
