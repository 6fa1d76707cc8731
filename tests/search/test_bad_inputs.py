"""BAD_INPUTS: every value a user can type reaches a check before the first trial starts.

Each case is a command line (flags, a study definition, a data file, a storage) that must end
with exit code 2 and one line on stderr, ``error: ...`` naming what must hold, and no
traceback. Each runs against a copy of a finished 4-trial study (``small_study``) in the same
storage, which must keep every trial: a ``study`` case would otherwise have run two more.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_digits

from tests.conftest import STUDY_ARGS, run_cli
from tests.data.test_data import write_idx

_STUDY = ("study", *STUDY_ARGS, "--pruner", "none", "--trials", "6", "--storage", "{db}")


def _study(*args: str) -> tuple[str, ...]:
    return (*_STUDY, *args)


def _data(*args: str) -> tuple[str, ...]:
    """A study of a data file: the options of ``_study`` but the data set."""
    return ("study", "--folds", "3", "--epochs", "1", "--quiet", "--trials", "6", "--storage", "{db}", *args)


# the options of the penguins study (tests/conftest.py's tested_penguins), continued on a copy
_PENGUINS = "--data {files}/penguins.csv --target species --folds 3 --epochs 5 --trials 9 --pruner none --quiet "
_PENGUINS += "--storage {penguins}"


_NESTED = ("--dataset", "digits", "--epochs", "1", "--trials", "2", "--quiet", "--storage", "{db}")


def _birds(*sets: str) -> tuple[str, ...]:
    """A study of birds.csv (a name on each of its 30 rows, ten colours) with ``--set`` items."""
    return _data("--data", "{files}/birds.csv", "--target", "label", *(a for item in sets for a in ("--set", item)))


def _toml(text: str) -> tuple[str, ...]:
    """A study run with a definition holding ``text``, written to {files}/<case>.toml by the fixture."""
    return ("toml", text)


BAD_INPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    # --- flags -------------------------------------------------------------------------------
    "negative --seed": (_study("--seed", "-1"), "seed must be a whole number in [0, 4294967295], but got -1"),
    "--seed not a number": (_study("--seed", "abc"), "Invalid value for '--seed'"),
    "--folds 1": (_study("--folds", "1"), "cv.folds must be a whole number >= 2, but got 1"),
    "--folds 0": (_study("--folds", "0"), "cv.folds must be a whole number >= 2, but got 0"),
    "--folds above the smallest class": (_study("--folds", "500"), "larger than the smallest class"),
    "--epochs 0": (_study("--epochs", "0"), "train.epochs must be a whole number >= 1, but got 0"),
    "--batch-size 0": (_study("--batch-size", "0"), "train.batch_size must be a whole number >= 1, but got 0"),
    "--test-size 0": (_study("--test-size", "0"), "data.test_size must be a number in (0, 1), but got 0.0"),
    "--test-size 1.5": (_study("--test-size", "1.5"), "data.test_size must be a number in (0, 1), but got 1.5"),
    "--test-size with an official split": (
        _study("--dataset", "fashion-mnist", "--test-size", "0.3"),
        "fashion-mnist has an official test split, so --test-size does not apply",
    ),
    "--target on a named data set": (_study("--target", "label"), "--target names the label column of a table"),
    "--trials 0": (_study("--trials", "0"), "Invalid value for '--trials'"),
    "negative --timeout": (_study("--timeout", "-1"), "Invalid value for '--timeout'"),
    "--heartbeat 0": (_study("--heartbeat", "0"), "Invalid value for '--heartbeat'"),
    "--jobs 0": (_study("--jobs", "0"), "Invalid value for '--jobs'"),
    "negative --storage-patience": (_study("--storage-patience", "-5"), "Invalid value for '--storage-patience'"),
    "unknown --dataset": (_study("--dataset", "cifar"), "Invalid value for '--dataset'"),
    "unknown --pruner": (_study("--pruner", "asha"), "Invalid value for '--pruner'"),
    "unknown --sampler": (_study("--sampler", "cmaes"), "Invalid value for '--sampler'"),
    "unknown --metric": (_study("--metric", "auc"), "Invalid value for '--metric'"),
    "--metric roc_auc on ten classes": (
        _study("--metric", "roc_auc"),
        "--metric roc_auc needs two classes, but digits has 10",
    ),
    "unknown --device": (_study("--device", "tpu"), "Invalid value for '--device'"),
    "unknown option": (_study("--fold", "3"), "No such option: --fold"),
    "--jobs 2 on in-memory SQLite": (
        ("study", *STUDY_ARGS, "--jobs", "2", "--storage", "sqlite:///:memory:"),
        "needs a storage that several processes share",
    ),
    # --- the study definition: [space] ranges at both ends, choices, steps --------------------
    "space depth from 0": (
        _toml("[space]\ndepth = { low = 0, high = 2 }"),
        "space.depth.low must be a whole number >= 1",
    ),
    "space depth 0 to 0": (
        _toml("[space]\ndepth = { low = 0, high = 0 }"),
        "space.depth.high must be a whole number >= 1",
    ),
    "space width from 0": (
        _toml("[space]\nwidth = { low = 0, high = 8 }"),
        "space.width.low must be a whole number >= 1",
    ),
    "space batch_size from 0": (
        _toml("[space]\nbatch_size = { low = 0, high = 64 }"),
        "space.batch_size.low must be a whole number >= 1",
    ),
    "space epochs from 0": (
        _toml("[space]\nepochs = { low = 0, high = 2 }"),
        "space.epochs.low must be a whole number >= 1",
    ),
    "space epochs to inf": (
        _toml("[space]\nepochs = { low = 1, high = inf }"),
        "space.epochs.high must be a whole number",
    ),
    "space lr from 0": (_toml("[space]\nlr = { low = 0, high = 0.1 }"), "space.lr.low must be a number > 0, but got 0"),
    "space lr negative": (_toml("[space]\nlr = { low = -0.1, high = 0.1 }"), "space.lr.low must be a number > 0"),
    "space lr to nan": (
        _toml("[space]\nlr = { low = 0.01, high = nan }"),
        "space.lr.high must be a number > 0, but got nan",
    ),
    "space dropout to 1": (
        _toml("[space]\ndropout = { low = 0, high = 1 }"),
        "space.dropout.high must be a number in [0, 1)",
    ),
    "space dropout from -0.1": (
        _toml("[space]\ndropout = { low = -0.1, high = 0.5 }"),
        "space.dropout.low must be a number in [0, 1)",
    ),
    "space momentum to 1": (
        _toml("[space]\nmomentum = { low = 0.5, high = 1 }"),
        "space.momentum.high must be a number in [0, 1)",
    ),
    "space weight_decay from -1": (
        _toml("[space]\nweight_decay = { low = -1, high = 0 }"),
        "space.weight_decay.low must be a number >= 0",
    ),
    "space untyped depth choices": (
        _toml("[space]\ndepth = { choices = [1, '2'] }"),
        "space.depth.choices[1] must be a whole number >= 1, but got '2'",
    ),
    "space fractional width step": (
        _toml("[space]\nwidth = { low = 8, high = 64, step = 0.5 }"),
        "space.width is a whole number, so step must be a whole number",
    ),
    "space negative lr step": (
        _toml("[space]\nlr = { low = 0.01, high = 0.1, step = -0.01 }"),
        "space.lr.step must be a number > 0",
    ),
    "space unknown optimizer": (
        _toml("[space]\noptimizer = { choices = ['adam', 'lbfgs'] }"),
        "unknown optimizer 'lbfgs'",
    ),
    "space lr_schedule as a range": (_toml("[space]\nlr_schedule = { low = 0, high = 1 }"), "must list choices"),
    "space low above high": (_toml("[space]\nwidth = { low = 64, high = 32 }"), "must have low <= high"),
    "space log from 0": (_toml("[space]\nlr = { low = 0, high = 1, log = true }"), "space.lr.low must be a number > 0"),
    "space unknown entry": (_toml("[space]\ndetph = { low = 1, high = 2 }"), "unknown search-space entry 'detph'"),
    "space entry not a table": (_toml("[space]\nlr = 0.1"), "must be a table"),
    # --- the study definition: [train], the top level, [sampler], [pruner], the file -----------
    "train depth 0": (_toml("[train]\ndepth = 0"), "train.depth must be a whole number >= 1, but got 0"),
    "train negative lr": (_toml("[train]\nlr = -1.0"), "train.lr must be a number > 0, but got -1.0"),
    "train negative weight_decay": (_toml("[train]\nweight_decay = -1.0"), "train.weight_decay must be a number >= 0"),
    "train momentum 1.5": (_toml("[train]\nmomentum = 1.5"), "train.momentum must be a number in [0, 1)"),
    "train dropout 1": (_toml("[train]\ndropout = 1.0"), "train.dropout must be a number in [0, 1)"),
    "train epochs a word": (_toml("[train]\nepochs = 'ten'"), "train.epochs must be int"),
    "train unknown optimizer": (_toml("[train]\noptimizer = 'lbfgs'"), "unknown optimizer 'lbfgs'"),
    "cv repeats 0": (_toml("[cv]\nrepeats = 0"), "cv.repeats must be a whole number >= 1, but got 0"),
    "--set cv.repeats=-2": (_study("--set", "cv.repeats=-2"), "cv.repeats must be a whole number >= 1, but got -2"),
    "cv repeats a word": (_toml("[cv]\nrepeats = 'two'"), "cv.repeats must be int, but got 'two'"),
    "train unknown class_weight": (_toml("[train]\nclass_weight = 'inverse'"), "unknown class_weight 'inverse'"),
    "space unknown class_weight": (
        _toml("[space]\nclass_weight = { choices = ['none', 'auto'] }"),
        "unknown class_weight 'auto' in space.class_weight.choices[1]",
    ),
    "train batch_size 0": (_toml("[train]\nbatch_size = 0"), "train.batch_size must be a whole number >= 1"),
    "negative seed in the file": (_toml("seed = -3"), "seed must be a whole number in [0, 4294967295], but got -3"),
    "unknown metric": (_toml("metric = 'auc'"), "unknown metric 'auc'"),
    "unknown section": (_toml("[trian]\nepochs = 2"), "did you mean 'train'"),
    "pruner p_threshold 0": (_toml("[pruner]\nname = 'wilcoxon'\np_threshold = 0.0"), "pruner.p_threshold must be"),
    "unknown pruner name": (_toml("[pruner]\nname = 'asha'"), "unknown name 'asha'"),
    "sampler negative startup": (
        _toml("[sampler]\nstartup_trials = -1"),
        "sampler.startup_trials must be a whole number >= 0",
    ),
    "unknown sampler": (_toml("sampler = 'cmaes'"), "unknown name 'cmaes'"),
    "unknown final model": (
        _toml("[final]\nmodel = 'bagging'"),
        "unknown model 'bagging' (known: retrain, fold-ensemble)",
    ),
    "final keep 0": (_toml("[final]\nkeep = 0"), "final.keep must be a whole number >= 1, but got 0"),
    "fold-ensemble of a study in memory": (
        ("study", *STUDY_ARGS, "--trials", "1", "--storage", ":memory:", "--set", "final.model=fold-ensemble"),
        "a fold-ensemble keeps its fold-models beside the study: give --storage a file or a server",
    ),
    "resumed with another final model": (
        _study("--set", "final.model=fold-ensemble"),
        "was created with final.model='retrain'; this run asks for final.model='fold-ensemble'",
    ),
    "sampler option of the wrong type": (_toml("[sampler]\nmultivariate = 'yes'"), "sampler.multivariate must be bool"),
    "not TOML": (_toml("[data\n"), "not valid TOML"),
    "not UTF-8": (("toml-bytes",), "not a UTF-8 text file"),
    "missing definition": (_study("--config", "{files}/none.toml"), "cannot read study definition"),
    # --- data files ----------------------------------------------------------------------------
    "missing data file": (_data("--data", "{files}/nope.csv", "--target", "y"), "no such file or folder"),
    "empty CSV": (_data("--data", "{files}/empty.csv", "--target", "label"), "the file is empty"),
    "CSV with a header only": (_data("--data", "{files}/header.csv", "--target", "label"), "has a header but no rows"),
    "a label missing": (_data("--data", "{files}/nan.csv", "--target", "label"), "has no label on 1 of 8 rows"),
    "inf in a feature": (_data("--data", "{files}/inf.csv", "--target", "label"), "infinite"),
    "one class": (_data("--data", "{files}/one.csv", "--target", "label"), "has a single class"),
    "float target": (_data("--data", "{files}/float.csv", "--target", "label"), "holds fractional numbers"),
    "missing target column": (_data("--data", "{files}/t.csv", "--target", "lable"), "did you mean 'label'"),
    "no target given": (_data("--data", "{files}/t.csv"), "give --target COLUMN"),
    "missing group column": (
        _data("--data", "{files}/grouped.csv", "--target", "label", "--groups", "subjct"),
        "no column 'subjct' to use as --groups (did you mean 'subject'?)",
    ),
    "group column with missing values": (
        _data("--data", "{files}/group-nan.csv", "--target", "label", "--groups", "subject"),
        "the group column 'subject' has missing values",
    ),
    "group column that is the target": (
        _data("--data", "{files}/grouped.csv", "--target", "label", "--groups", "label"),
        "--groups 'label' is the label column (--target)",
    ),
    "--groups on a named data set": (
        _study("--groups", "subject"),
        "--groups names a column of a table file, but the data set is 'digits'",
    ),
    "one class after grouping": (
        _data("--data", "{files}/one-group.csv", "--target", "label", "--groups", "subject"),
        "class 'y' lies in 1 group of column 'subject', and none of them fell into the test split",
    ),
    "fewer groups than the hold-out cuts": (
        _data("--data", "{files}/three-groups.csv", "--target", "label", "--groups", "subject"),
        "column 'subject' has 3 groups; a 20% test split of whole groups needs at least 5",
    ),
    "fewer groups than folds": (
        _data("--data", "{files}/grouped.csv", "--target", "label", "--groups", "subject", "--folds", "12"),
        "--folds 12 is more than the 10 groups of the training split",
    ),
    "a class in fewer groups than folds": (
        _data("--data", "{files}/few-groups.csv", "--target", "label", "--groups", "subject", "--folds", "4"),
        "fold 3 of 4 has no validation row of class 'y': its rows lie in 3 groups",
    ),
    # --- tables as they come: what a column must be to be a feature (data.table) -----------------
    "a column empty on every row": (
        _data("--data", "{files}/empty-column.csv", "--target", "label"),
        "column 'c' is empty on every training row; drop it: [data] drop = ['c']",
    ),
    "a text column of one value": (
        _data("--data", "{files}/text.csv", "--target", "label"),
        "column 'a' holds one value ('p') on every training row",
    ),
    "a text column that is an identifier": (
        _birds(),
        "column 'name' looks like an identifier (24 distinct values on 24 training rows); drop it",
    ),
    "more categories than max_categories": (
        _birds("data.drop=['name']", "data.max_categories=3"),
        "column 'colour' has 10 categories on the training rows, more than [data] max_categories = 3",
    ),
    "max_categories below 2": (_birds("data.max_categories=1"), "data.max_categories must be a whole number >= 2"),
    "drop of no such column": (_birds("data.drop=['nmae']"), "data.drop names no column 'nmae' (did you mean 'name'?)"),
    "text in a column stated numeric": (
        _birds("data.numeric=['colour']"),
        "column 'colour' must hold numbers, but holds text on 24 rows",
    ),
    "the label as a dropped column": (_birds("data.drop=['label']"), "data.drop lists 'label', the label column"),
    "categorical columns of an image data set": (
        _study("--set", "data.categorical=['px1']"),
        "data.categorical names columns of a table file, but the data set is 'digits'",
    ),
    "continuing a table study with other column kinds": (
        ("study", *_PENGUINS.split(), "--set", "data.categorical=['year']"),
        "data.categorical=['year']",
    ),
    "final-test on a file whose columns changed": (
        ("final-test", "--storage", "{penguins}", "--data", "{files}/penguins-renamed.csv"),
        "the table's columns differ from study 'penguins''s: column 'island' is gone, column 'isle' is new",
    ),
    "predict without a column": (
        ("predict", "{penguins_model}", "{files}/penguins-no-sex.csv"),
        "the model takes 7 feature columns, but 1 are missing: sex",
    ),
    "predict with text in a number column": (
        ("predict", "{penguins_model}", "{files}/penguins-text.csv"),
        "column 'bill_length_mm' must hold numbers, but holds text on 1 row ('long')",
    ),
    "NPZ that is an NPY": (_data("--data", "{files}/npy.npz", "--target", "label"), "an NPY array, not an NPZ archive"),
    "NPZ with a 0-d array": (_data("--data", "{files}/scalar.npz", "--target", "label"), "holds a single value"),
    "unknown suffix .tsv": (_data("--data", "{files}/t.tsv", "--target", "label"), "cannot tell what kind of data"),
    "unknown suffix .csv.gz": (_data("--data", "{files}/t.csv.gz", "--target", "label"), "cannot tell what kind"),
    "unknown suffix .feather": (_data("--data", "{files}/t.feather", "--target", "label"), "cannot tell what kind"),
    "truncated IDX header": (_data("--data", "{files}/idx-truncated"), "truncated IDX header"),
    "IDX images and labels of other counts": (_data("--data", "{files}/idx-counts"), "do not match"),
    "IDX file that is not IDX": (_data("--data", "{files}/idx-garbage"), "not an IDX file"),
    "pickle of another structure": (_data("--data", "{files}/dict.pkl.gz"), "expected ((train_x, train_y)"),
    "pickle with negative labels": (_data("--data", "{files}/negative.pkl.gz"), "labels must be class numbers"),
    "pickle with string labels": (_data("--data", "{files}/strings.pkl.gz"), "labels must be class numbers"),
    "pickle with empty arrays": (_data("--data", "{files}/empty.pkl.gz"), "must be a 2-D image array"),
    "pickle of images and labels of other counts": (_data("--data", "{files}/counts.pkl.gz"), "one label per row"),
    "pickle that would run code": (_data("--data", "{files}/evil.pkl.gz"), "only numpy arrays may be unpickled"),
    "file that is no pickle": (_data("--data", "{files}/garbage.pkl"), "cannot read as the tutorials' mnist.pkl.gz"),
    # --- nested CV --------------------------------------------------------------------------------
    "nested --outer 1": (("nested", *_NESTED, "--outer", "1"), "Invalid value for '--outer'"),
    "nested --outer above the smallest class": (
        ("nested", *_NESTED, "--outer", "500"),
        "outer folds: --outer 500 is larger than the smallest class",
    ),
    "nested --folds 1": (("nested", *_NESTED, "--folds", "1"), "cv.folds must be a whole number >= 2, but got 1"),
    "nested of a bad --set": (("nested", *_NESTED, "--set", "train.dropout=1.5"), "train.dropout must be a number in"),
    "final-test of an outer fold's study": (
        ("final-test", "--storage", "{files}/nested.db", "--study-name", "digits-outer1of2"),
        "study 'digits-outer1of2' was searched on rows given to it in memory",
    ),
    # --- storages --------------------------------------------------------------------------------
    "storage that is not SQLite": (("study", *STUDY_ARGS, "--storage", "{files}/t.csv"), "is not an SQLite database"),
    "corrupt SQLite storage": (("study", *STUDY_ARGS, "--storage", "{files}/corrupt.db"), "damaged SQLite database"),
    "storage folder missing": (("study", *STUDY_ARGS, "--storage", "{files}/no/dir/s.db"), "does not exist"),
    "unreachable server": (
        ("study", *STUDY_ARGS, "--storage", "postgresql://u:secret@127.0.0.1:9/db"),
        "cannot open storage postgresql://u:***@127.0.0.1:9/db",
    ),
    "unreachable server, password with @": (
        ("study", *STUDY_ARGS, "--storage", "postgresql://u:se@cret@127.0.0.1:9/db"),
        "cannot open storage postgresql://u:***@127.0.0.1:9/db",
    ),
    "unreachable server, password as a parameter": (
        ("study", *STUDY_ARGS, "--storage", "postgresql://u@127.0.0.1:9/db?password=secret"),
        "postgresql://u@127.0.0.1:9/db?password=***",
    ),
    # --- report and final-test --------------------------------------------------------------------
    "report on a missing file": (("report", "{files}/none.db"), "no such study file"),
    "report on another program's SQLite file": (("report", "{files}/other.db"), "holds no study"),
    "report on a corrupt file": (("report", "{files}/corrupt.db"), "damaged SQLite database"),
    "report of an unknown study": (("report", "{db}", "--study-name", "digts"), "did you mean 'digits'"),
    "report sorted by no column": (("report", "{db}", "--sort", "nope"), "cannot sort by 'nope'"),
    "report in an unknown format": (("report", "{db}", "--format", "xml"), "Invalid value for '--format'"),
    "final-test of no such trial": (("final-test", "99", "--storage", "{db}"), "no trial 99 in study 'digits'"),
    "final-test of a word": (("final-test", "worst", "--storage", "{db}"), "give 'best', 'simplest' or a trial number"),
    "final-test of a missing file": (("final-test", "--storage", "{files}/none.db"), "no such study file"),
    "final-test --data for a bundled data set": (
        ("final-test", "--storage", "{db}", "--data", "{files}/t.csv"),
        "study 'digits' runs on the bundled data set 'digits', so --data does not apply",
    ),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad file the cases name."""
    d = tmp_path_factory.mktemp("bad-files")
    good = pd.DataFrame({"a": [1.0, 2, 3, 4, 5, 6, 7, 8], "b": [0.5] * 8, "label": ["x"] * 5 + ["y"] * 3})
    good.to_csv(d / "t.csv", index=False)
    for name in ("t.tsv", "t.csv.gz", "t.feather"):
        shutil.copy(d / "t.csv", d / name)
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("a,b,label\n")
    good.assign(a=[1.0, np.inf, 3, 4, 5, 6, 7, 8]).to_csv(d / "inf.csv", index=False)
    good.assign(label="x").to_csv(d / "one.csv", index=False)
    good.assign(label=np.linspace(0, 1, 8)).to_csv(d / "float.csv", index=False)
    good.assign(a="p").to_csv(d / "text.csv", index=False)
    good.assign(c=np.nan).to_csv(d / "empty-column.csv", index=False)
    good.assign(label=["x", "y", np.nan, "x", "y", "x", "y", "x"]).to_csv(d / "nan.csv", index=False)
    birds = pd.DataFrame({"name": [f"bird-{i}" for i in range(30)], "colour": [f"c{i % 10}" for i in range(30)]})
    birds.assign(size=np.arange(30.0), label=["x", "y"] * 15).to_csv(d / "birds.csv", index=False)
    penguins = load_penguins()
    penguins.to_csv(d / "penguins.csv", index=False)
    penguins.rename(columns={"island": "isle"}).to_csv(d / "penguins-renamed.csv", index=False)
    penguins.drop(columns="sex").to_csv(d / "penguins-no-sex.csv", index=False)
    text = penguins.astype({"bill_length_mm": object})
    text.loc[5, "bill_length_mm"] = "long"
    text.to_csv(d / "penguins-text.csv", index=False)
    subjects = np.arange(60) // 5  # 12 groups of 5 rows: a subject's rows
    grouped = pd.DataFrame(
        {"a": np.arange(60.0), "b": np.arange(60) % 7 * 1.0, "label": ["x", "y"] * 30, "subject": subjects}
    )
    grouped.to_csv(d / "grouped.csv", index=False)
    grouped.assign(subject=grouped["subject"].where(subjects != 4)).to_csv(d / "group-nan.csv", index=False)
    grouped.assign(label=np.where(subjects == 3, "y", "x")).to_csv(d / "one-group.csv", index=False)
    grouped.assign(subject=np.arange(60) % 3).to_csv(d / "three-groups.csv", index=False)
    grouped.assign(label=np.where(subjects < 4, "y", "x")).to_csv(d / "few-groups.csv", index=False)
    with (d / "npy.npz").open("wb") as f:
        np.save(f, np.zeros((8, 3)))
    np.savez(d / "scalar.npz", label=np.array(3), a=np.zeros(8))
    digits = load_digits()
    images = (digits.images * 255 / 16).astype(np.uint8)
    for name in ("idx-truncated", "idx-counts", "idx-garbage"):
        write_idx(d / name, images[:100], digits.target[:100], images[100:150], digits.target[100:150])
    with gzip.open(d / "idx-truncated" / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03\x00\x00")  # three dimensions promised, two bytes of them given
    write_idx(d / "idx-counts", images[:100], digits.target[:90], images[100:150], digits.target[100:150])
    with gzip.open(d / "idx-garbage" / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"PK\x03\x04 not an idx file")
    x = (digits.data / 16).astype(np.float32)
    y = digits.target.astype(np.int64)
    pickles = {
        "dict": {"train": (x, y)},
        "negative": ((x[:50], -y[:50] - 1), (x[50:60], y[50:60]), (x[60:80], y[60:80])),
        "strings": ((x[:50], y[:50].astype(str)), (x[50:60], y[50:60]), (x[60:80], y[60:80])),
        "empty": ((x[:0], y[:0]), (x[50:60], y[50:60]), (x[60:80], y[60:80])),
        "counts": ((x[:50], y[:40]), (x[50:60], y[50:60]), (x[60:80], y[60:80])),
        "evil": ((_Evil(), y[:5]), (x[:5], y[:5]), (x[:5], y[:5])),
    }
    for name, value in pickles.items():
        with gzip.open(d / f"{name}.pkl.gz", "wb") as f:
            pickle.dump(value, f)
    (d / "garbage.pkl").write_bytes(b"\x80\x05this is not a pickle at all")
    (d / "corrupt.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    nested = ("nested", "--dataset", "digits", "--outer", "2", "--folds", "2", "--epochs", "1", "--trials", "1")
    assert run_cli(*nested, "--quiet", "--storage", d / "nested.db", "--out", d / "nested") == 0
    with sqlite3.connect(d / "other.db") as db:  # another program's database
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    (d / "not-utf8.toml").write_bytes(b"[train]\nepochs = 2 # \xff\xfe\n")
    return d


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch pwned",))


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_the_study_keeps_every_trial(
    case: str,
    files: Path,
    small_study: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)  # report and final-test write under the working folder
    db, penguins = tmp_path / "study.db", tmp_path / "penguins.db"
    shutil.copy(small_study[0], db)
    args, message = BAD_INPUTS[case]
    tested = request.getfixturevalue("tested_penguins") if "{penguins" in " ".join(args) else None
    if tested is not None:  # a penguins study, final-tested, for the cases of tables as they come
        shutil.copy(tested.db, penguins)
    if args[0] == "toml":
        (tmp_path / "definition.toml").write_text(args[1] + "\n")
        args = _study("--config", str(tmp_path / "definition.toml"))
    elif args[0] == "toml-bytes":
        args = _study("--config", str(files / "not-utf8.toml"))
    other_tables = _tables(files / "other.db")
    model = tested.folder if tested is not None else None
    argv = [a.format(db=db, files=files, penguins=penguins, penguins_model=model) for a in args]
    capsys.readouterr()
    code = run_cli(*argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err and "secret" not in err and "cret@" not in err
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")
    assert [t.state for t in study.trials] == [
        t.state for t in optuna.load_study(study_name="digits", storage=f"sqlite:///{small_study[0]}").trials
    ]  # every finished trial kept, none added
    assert _tables(files / "other.db") == other_tables  # a reading command created nothing there
    if tested is not None:
        kept = optuna.load_study(study_name="penguins", storage=f"sqlite:///{tested.db}").trials
        now = optuna.load_study(study_name="penguins", storage=f"sqlite:///{penguins}")
        assert [t.state for t in now.trials] == [t.state for t in kept]
        assert now.user_attrs == optuna.load_study(study_name="penguins", storage=f"sqlite:///{tested.db}").user_attrs
    assert not Path("pwned").exists()
