"""Pruning that understands K-fold: per-epoch scores over all folds; pruned trials keep figures."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpsearch.store.schema import TRIAL_FOLDS, TRIAL_MEAN, TRIAL_REASON
from tests.conftest import run_cli

# half the trials cannot learn in three epochs (lr 1e-6), so they fall below the median; with
# seed 10 the random sampler draws lr 0.01, 0.01, 1e-6, 1e-6, 0.01 for the five start-up trials
# (three learn, so the median is a learning trial's score), then 0.01, 1e-6, 1e-6
_SPACE = (
    "seed = 10\nsampler = 'random'\n[data]\ndataset = 'digits'\n[cv]\nfolds = 3\n[train]\nepochs = 3\n"
    "[space]\noptimizer = { choices = ['adam'] }\nlr = { choices = [0.01, 1e-6] }\n"
    "depth = { low = 1, high = 1 }\nwidth = { low = 32, high = 32 }\n"
)


def _study(tmp_path: Path, pruner: str, trials: int) -> optuna.Study:
    config = tmp_path / "space.toml"
    config.write_text(_SPACE)
    db = tmp_path / f"{pruner}.db"
    args = ("--config", config, "--trials", trials, "--pruner", pruner, "--quiet", "--storage", f"sqlite:///{db}")
    assert run_cli("study", *map(str, args)) == 0
    return optuna.load_study(study_name="digits", storage=f"sqlite:///{db}")


def test_median_pruner_stops_hopeless_trials_and_they_keep_their_figures(tmp_path: Path) -> None:
    study = _study(tmp_path, "median", trials=8)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "no trial was pruned"
    for t in pruned:
        assert t.params["lr"] == 1e-6
        assert t.user_attrs[TRIAL_REASON].startswith("pruned after epoch 2/3")
        folds = t.user_attrs[TRIAL_FOLDS]
        assert len(folds) == 3  # every fold's figures at the epoch where it stopped
        assert t.user_attrs[TRIAL_MEAN]["accuracy"] == pytest.approx(sum(f["accuracy"] for f in folds) / 3)
        # the intermediate value at step e is the mean over all folds after epoch e
        assert set(t.intermediate_values) == {0, 1}
        assert t.intermediate_values[1] == pytest.approx(t.user_attrs[TRIAL_MEAN]["accuracy"])
    assert len(study.trials) == 8  # --trials counts pruned trials too, as Optuna's n_trials does


def test_wilcoxon_pruner_sees_each_fold_as_a_paired_instance(tmp_path: Path) -> None:
    study = _study(tmp_path, "wilcoxon", trials=3)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete
    # step e*K + k is fold k after epoch e: 3 epochs x 3 folds
    assert set(complete[0].intermediate_values) == set(range(9))
    last_epoch = [complete[0].intermediate_values[6 + k] for k in range(3)]
    assert last_epoch == pytest.approx([f["accuracy"] for f in complete[0].user_attrs[TRIAL_FOLDS]])


def test_no_pruner_scores_only_the_last_epoch(tmp_path: Path) -> None:
    study = _study(tmp_path, "none", trials=2)
    assert all(not t.intermediate_values for t in study.trials)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
