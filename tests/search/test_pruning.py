"""Pruning that understands K-fold: per-epoch scores over all folds; pruned trials keep figures."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.pruners import MedianPruner
from optuna.trial import TrialState

from hpsearch.search.pruning import WavePruner
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


def _study(tmp_path: Path, pruner: str, trials: int, extra: tuple[str, ...] = ()) -> optuna.Study:
    config = tmp_path / "space.toml"
    config.write_text(_SPACE)
    db = tmp_path / f"{pruner}.db"
    args = ("--config", config, "--trials", trials, "--pruner", pruner, "--quiet", "--storage", f"sqlite:///{db}")
    assert run_cli("study", *map(str, args), *extra) == 0
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


def test_wilcoxon_pairs_each_folds_final_score_and_stops_a_trial_after_a_wave(tmp_path: Path) -> None:
    # as WilcoxonPruner's documentation asks: the instances are the folds (step = fold), each reported
    # with its score after its last epoch, so that their mean is the objective; with 5 folds in waves
    # of 4, a trial worse than the best on all 4 first folds (p = 1/16 < 0.1) stops before the fifth
    sets = ("--set", "cv.folds=5", "--set", "pruner.wave_folds=4")
    study = _study(tmp_path, "wilcoxon", trials=8, extra=sets)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete
    for t in complete:
        folds = t.user_attrs[TRIAL_FOLDS]
        assert t.intermediate_values == pytest.approx({k: f["accuracy"] for k, f in enumerate(folds)})
        assert t.value == pytest.approx(sum(t.intermediate_values.values()) / 5)
    stopped = study.get_trials(states=(TrialState.PRUNED,))
    assert stopped, "Wilcoxon stopped no trial"
    best = study.best_trial.user_attrs[TRIAL_FOLDS]
    for t in stopped:
        assert t.params["lr"] == 1e-6
        assert t.user_attrs[TRIAL_REASON] == (
            "stopped after folds 1-4: worse than the best trial on the same folds (Wilcoxon signed-rank test, p < 0.1)"
        )
        folds = t.user_attrs[TRIAL_FOLDS]
        assert len(folds) == 4 and set(t.intermediate_values) == {0, 1, 2, 3}
        assert all(f["accuracy"] < b["accuracy"] for f, b in zip(folds, best, strict=False))


def test_hyperband_stops_trials_at_its_rungs_and_they_keep_every_fold(tmp_path: Path) -> None:
    # 9 epochs (steps 0-8), min_resource 1, reduction factor 3: Optuna's rungs are at steps 1 and 3
    # (1 x 3^k); a trial reports the mean over all folds at each epoch
    study = _study(tmp_path, "hyperband", trials=10, extra=("--epochs", "9"))
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "Hyperband stopped no trial"
    for t in pruned:
        assert max(t.intermediate_values) in (1, 3)  # stopped at a rung
        assert t.user_attrs[TRIAL_REASON].startswith(f"pruned after epoch {max(t.intermediate_values) + 1}/9")
        assert len(t.user_attrs[TRIAL_FOLDS]) == 3
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert set(t.intermediate_values) == set(range(9)) and len(t.user_attrs[TRIAL_FOLDS]) == 3
    assert all(t.state == TrialState.COMPLETE for t in study.trials if t.params["lr"] == 0.01)


def test_no_pruner_scores_only_the_last_epoch(tmp_path: Path) -> None:
    study = _study(tmp_path, "none", trials=2)
    assert all(not t.intermediate_values for t in study.trials)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def _references(study: optuna.Study, curves: list[list[float]]) -> None:
    """Complete trials whose curves (one value per step) are the pruner's references."""
    for curve in curves:
        study.add_trial(
            optuna.trial.create_trial(
                value=curve[-1], intermediate_values=dict(enumerate(curve)), params={}, distributions={}
            )
        )


def _judged(study: optuna.Study, curve: list[float]) -> int | None:
    """The step at which a trial reporting ``curve`` is told to stop, or None."""
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


def test_the_epoch_pruner_warms_up_in_every_wave_and_judges_a_wave_on_its_own_folds() -> None:
    # 2 waves of 4 epochs (steps 0-3, then 4-7), warm-up 2 epochs per wave; the references learn
    # 0.5, 0.7, 0.8, 0.9 on each wave's fresh folds
    wave = [0.5, 0.7, 0.8, 0.9]
    pruner = WavePruner(epochs=4, startup_trials=2, warmup_epochs=2)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _references(study, [[v + d for v in wave] * 2 for d in (-0.01, 0.0, 0.01)])
    # good on folds 1-2, bad on folds 3-4: stopped at wave 2's third epoch (step 6), not before
    assert _judged(study, [*wave, 0.1, 0.1, 0.1, 0.1]) == 6
    # Optuna's MedianPruner takes the best over all steps so far: wave 1's 0.9 hides wave 2
    median = optuna.create_study(direction="maximize", pruner=MedianPruner(n_startup_trials=2, n_warmup_steps=2))
    _references(median, [[v + d for v in wave] * 2 for d in (-0.01, 0.0, 0.01)])
    assert _judged(median, [*wave, 0.1, 0.1, 0.1, 0.1]) is None
    # below from the start: stopped once the warm-up is over, at epoch 3 of wave 1
    assert _judged(study, [0.1] * 8) == 2


def test_a_lower_percentile_spares_a_trial_between_the_quartile_and_the_median() -> None:
    curves = [[0.6 + 0.02 * i] * 3 for i in range(8)]  # 0.60, 0.62, ..., 0.74 at every step
    trial_curve = [0.64] * 3  # below the median (0.67), above the lower quartile (0.635)
    for percentile, stopped in ((50.0, 1), (25.0, None)):
        study = optuna.create_study(direction="maximize", pruner=WavePruner(
            epochs=3, startup_trials=1, warmup_epochs=1, percentile=percentile))  # fmt: skip
        _references(study, curves)
        assert _judged(study, trial_curve) == stopped, percentile
    loss = optuna.create_study(direction="minimize", pruner=WavePruner(epochs=3, startup_trials=1, warmup_epochs=1))
    _references(loss, [[1.0 - 0.02 * i] * 3 for i in range(8)])
    assert _judged(loss, [0.95] * 3) == 1  # a loss above the median is the worse half
