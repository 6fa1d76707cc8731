"""Study definitions: the built-in default equals studies/default.toml; bad entries are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.api import DEFINITIONS
from hpsearch.config import Definition, ParamSpec, load_definition, stored_definition, with_overrides
from hpsearch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_default_file_and_builtin_default_do_not_drift() -> None:
    assert load_definition(ROOT / "studies" / "default.toml") == Definition()


def test_stored_definition_rebuilds_the_same_object() -> None:
    defn = with_overrides(Definition(), dataset="digits", folds=3, epochs=2, seed=7, metric="loss")
    assert stored_definition(defn.to_dict()) == defn
    assert defn.direction == "minimize"


@pytest.mark.parametrize("study", sorted(p.name for p in (ROOT / "studies").glob("*.toml")))
def test_every_shipped_study_definition_survives_storage(study: str) -> None:
    # fashion-mnist.toml searches dropout from 0.0: a stored range that starts at zero is kept
    defn = load_definition(ROOT / "studies" / study)
    assert stored_definition(defn.to_dict()) == defn
    # the installed package carries the same file, and `hpsearch init NAME` knows it
    assert (ROOT / "hpsearch" / "studies" / study).read_text() == (ROOT / "studies" / study).read_text()
    assert study.removesuffix(".toml") in DEFINITIONS


def test_seed_flows_to_every_part_of_the_search_but_not_to_the_test_split() -> None:
    defn = with_overrides(Definition(), seed=11)
    assert (defn.seed, defn.cv.seed, defn.train.seed) == (11, 11, 11)
    assert defn.data.split_seed == 0  # the hold-out is the data's: its own seed, 0 unless [data] says


def test_a_study_stored_before_split_seed_keeps_its_hold_out() -> None:
    # such a study cut its hold-out from the study seed, stored as data.seed
    old = Definition().to_dict() | {"seed": 3}
    old["data"] = {k: v for k, v in old["data"].items() if k != "split_seed"} | {"seed": 3}
    assert stored_definition(old).data.split_seed == 3
    now = with_overrides(Definition(), seed=3).to_dict()
    assert stored_definition(now).data.split_seed == 0


def test_searchable_batch_size_and_epochs(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[space]\nbatch_size = { choices = [32, 64] }\nepochs = { low = 1, high = 3 }\n")
    defn = load_definition(path)
    assert ParamSpec(name="batch_size", choices=(32, 64)) in defn.space
    with pytest.raises(ConfigError, match="searches it"):
        with_overrides(defn, epochs=2)


def test_class_weight_is_fixed_or_searched(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[train]\nclass_weight = 'balanced'\n")
    assert load_definition(path).train.class_weight == "balanced"
    path.write_text("[space]\nclass_weight = { choices = ['none', 'balanced'] }\n")
    defn = load_definition(path)
    assert defn.space == (ParamSpec(name="class_weight", choices=("none", "balanced")),)
    assert stored_definition(defn.to_dict()) == defn


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[space]\ndepht = { low = 1, high = 2 }\n", "did you mean 'depth'"),
        ("[space]\noptimizer = { choices = ['adam', 'lbfgs'] }\n", "unknown optimizer 'lbfgs'"),
        ("[train]\nlr_schedule = 'cosin'\n", "unknown lr_schedule 'cosin' \\(did you mean 'cosine'"),
        ("[space]\nlr_schedule = { low = 0, high = 1 }\n", "space.lr_schedule must list choices"),
        ("[train]\nclass_weight = 'inverse'\n", "unknown class_weight 'inverse'"),
        ("[space]\nwidth = { low = 64, high = 32 }\n", "low <= high"),
        ("[space]\nlr = { low = 0, high = 1, log = true }\n", "space.lr.low must be a number > 0, but got 0"),
        ("[space]\ndepth = { low = 1.5, high = 3 }\n", "space.depth.low must be a whole number >= 1, but got 1.5"),
        ("[space]\nlr = 0.1\n", "must be a table"),
        ("[space]\nlr = { high = 0.1 }\n", "needs either choices or both low and high"),
        ("[cv]\nfolds = 1\n", "cv.folds must be a whole number >= 2, but got 1"),
        ("[train]\nepochs = 'ten'\n", "train.epochs must be int"),
        ("[trian]\nepochs = 2\n", "did you mean 'train'"),
        ("metric = 'acc'\n", "unknown metric 'acc'"),
        ("[data\n", "not valid TOML"),
    ],
)
def test_malformed_definition_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_definition(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[space]\nwidth = { low = 64, high = 32 }\ndepth = { low = 0.5, high = 2 }\n")
    with pytest.raises(ConfigError) as info:
        load_definition(path)
    assert "space.width" in str(info.value)
    assert "space.depth" in str(info.value)
