"""The race over folds: raced-out trials end pruned with their folds and reason; complete ones have all K."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpsearch.analysis.report import build_report
from hpsearch.config import PrunerConfig
from hpsearch.search.race import verdict
from hpsearch.store import stored_run
from hpsearch.store.schema import TRIAL_FOLDS, TRIAL_REASON, TRIAL_WORKER
from hpsearch.training import plan_waves
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]

# digits, 3 folds in waves of 2 ([0, 1], then [2]), 2 epochs; the median pruner never acts
# (startup_trials = 100), so what stops a trial here is the race. With seed 10 the random sampler
# draws lr 0.01, 0.01, 1e-6, 1e-6, 0.01, 0.01, 1e-6, 1e-6: trials with 1e-6 cannot learn.
_DEFINITION = """seed = 10
sampler = 'random'
[data]
dataset = 'digits'
[cv]
folds = 3
[train]
epochs = 2
[pruner]
name = '{pruner}'
startup_trials = 100
wave_folds = 2
[space]
optimizer = {{ choices = ['adam'] }}
lr = {{ choices = {lrs} }}
depth = {{ low = 1, high = 1 }}
width = {{ low = 32, high = 32 }}
"""


def _study(tmp_path: Path, pruner: str, trials: int, lrs: str = "[0.01, 1e-6]", name: str = "s") -> optuna.Study:
    config = tmp_path / f"{name}.toml"
    config.write_text(_DEFINITION.format(pruner=pruner, lrs=lrs))
    db = f"sqlite:///{tmp_path / name}.db"
    assert run_cli("study", "--config", str(config), "--trials", str(trials), "--quiet", "--storage", db) == 0
    return optuna.load_study(study_name="digits", storage=db)


def test_a_raced_out_trial_is_pruned_with_its_folds_and_reason(tmp_path: Path) -> None:
    study = _study(tmp_path, "race", 8)
    raced = study.get_trials(states=(TrialState.PRUNED,))
    assert raced, "the race stopped no trial"
    reached = dict(zip(*(build_report(study, *stored_run(study)).loss[c] for c in ("trial", "reached")), strict=True))
    for t in raced:
        assert t.params["lr"] == 1e-6
        folds = t.user_attrs[TRIAL_FOLDS]
        assert len(folds) == 2  # the first wave's folds, kept
        mean = sum(f["accuracy"] for f in folds) / 2
        assert t.user_attrs[TRIAL_REASON].startswith(f"stopped after folds 1-2: mean accuracy {mean:.4f} below")
        assert reached[t.number] == "wave 1/2, epoch 2/2"  # the report shows how far it got
        # stopped against the best complete trial of its time (one worker: the trials before it)
        before = [c for c in study.get_trials(states=(TrialState.COMPLETE,)) if c.number < t.number]
        incumbent = max(before, key=lambda c: c.value or 0.0)
        assert mean < min(f["accuracy"] for f in incumbent.user_attrs[TRIAL_FOLDS])
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert len(t.user_attrs[TRIAL_FOLDS]) == 3  # a complete trial always has all K folds
        assert reached[t.number] == "wave 2/2, epoch 2/2"


def test_the_race_stops_exactly_the_trials_its_rule_names_and_never_the_best(tmp_path: Path) -> None:
    # learning rates near the best's and far below it: with lr 0.015 or 0.02 the mean on folds 1-2
    # (0.893, 0.895) lies between lr 0.03's worst fold (0.887) and its mean there (0.908), where the
    # forgiving rule goes on and the paired one would stop. The same study trained in full (--pruner
    # none) gives each trial's figures on every fold (same parameters, same seeds: the same figures),
    # so every decision of the race is checked against the rule, computed here from those figures
    lrs = "[0.03, 0.02, 0.015, 0.005, 1e-6]"
    raced, full = _study(tmp_path, "race", 10, lrs, name="raced"), _study(tmp_path, "none", 10, lrs, name="full")
    figures = {t.number: [f["accuracy"] for f in t.user_attrs[TRIAL_FOLDS]] for t in full.trials}
    incumbent: list[float] = []  # the best complete trial's folds so far, in the race
    for t in raced.trials:
        first_wave = sum(figures[t.number][:2]) / 2
        should_stop = bool(incumbent) and first_wave < min(incumbent)
        assert (t.state == TrialState.PRUNED) == should_stop, f"trial {t.number}"
        if t.state == TrialState.COMPLETE:
            assert [f["accuracy"] for f in t.user_attrs[TRIAL_FOLDS]] == figures[t.number]
            if not incumbent or sum(figures[t.number]) > sum(incumbent):
                incumbent = figures[t.number]
    assert raced.get_trials(states=(TrialState.PRUNED,)), "the race stopped no trial"
    assert full.best_trial.number in {t.number for t in raced.get_trials(states=(TrialState.COMPLETE,))}
    assert raced.best_value == full.best_value


def test_a_resumed_race_decides_as_one_run(tmp_path: Path) -> None:
    once = _study(tmp_path, "race", 6, name="once")
    _study(tmp_path, "race", 3, name="twice")
    twice = _study(tmp_path, "race", 6, name="twice")  # the same command, continued
    assert [(t.state, t.value, t.user_attrs.get(TRIAL_REASON)) for t in once.trials] == [
        (t.state, t.value, t.user_attrs.get(TRIAL_REASON)) for t in twice.trials
    ]


def test_a_second_worker_races_by_the_stored_rule(tmp_path: Path) -> None:
    config = tmp_path / "race.toml"
    config.write_text(_DEFINITION.format(pruner="race", lrs="[0.01, 1e-6]"))
    db = f"sqlite:///{tmp_path / 'race.db'}"
    # 20 epochs: trials last long enough that the second worker, starting beside the first, gets some
    command = [sys.executable, "-m", "hpsearch", "study", "--config", str(config), "--epochs", "20", "--storage", db]
    command.append("--quiet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen([*command, "--trials", "8"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    study = optuna.load_study(study_name="digits", storage=db)
    assert len({t.user_attrs[TRIAL_WORKER] for t in study.trials}) == 2  # both workers ran trials
    for t in study.trials:  # each trial decided by the stored rule, whichever worker ran it
        if t.params["lr"] == 1e-6:
            assert t.state == TrialState.PRUNED
            assert "below the best trial's worst fold" in t.user_attrs[TRIAL_REASON]
            assert len(t.user_attrs[TRIAL_FOLDS]) == 2
        else:
            assert t.state == TrialState.COMPLETE and len(t.user_attrs[TRIAL_FOLDS]) == 3
    # a worker that would race by another rule is refused, and the study keeps its trials
    paired = subprocess.run(
        [*command, "--trials", "9", "--set", "pruner.race_rule=paired"], cwd=ROOT, capture_output=True, text=True
    )
    assert paired.returncode == 2 and paired.stderr.count("\n") == 1 and "race_rule" in paired.stderr
    assert len(optuna.load_study(study_name="digits", storage=db).trials) == 8


def test_the_rules_against_a_best_with_folds_0_9_0_92_0_94() -> None:
    best = [0.90, 0.92, 0.94]
    forgiving, paired = PrunerConfig(name="race"), PrunerConfig(name="race", race_rule="paired")
    # 0.905 on folds 1-2: above the best's worst fold (0.90), below its mean there (0.91)
    assert verdict(forgiving, "accuracy", [0.90, 0.91], [0, 1], best, maximize=True) is None
    assert verdict(paired, "accuracy", [0.90, 0.91], [0, 1], best, maximize=True) == (
        "stopped after folds 1-2: mean accuracy 0.9050 below the best trial's mean on the same folds, 0.9100"
    )
    assert verdict(forgiving, "accuracy", [0.85, 0.89], [0, 1], best, maximize=True) == (
        "stopped after folds 1-2: mean accuracy 0.8700 below the best trial's worst fold, 0.9000"
    )
    assert verdict(forgiving, "loss", [0.5], [0], [0.3, 0.4], maximize=False) == (
        "stopped after fold 1: mean loss 0.5000 above the best trial's worst fold, 0.4000"
    )
    assert verdict(forgiving, "accuracy", [0.1], [0], [], maximize=True) is None  # no complete trial yet
    assert plan_waves(5, 2) == [[0, 1], [2, 3], [4]] and plan_waves(5, 8) == [[0, 1, 2, 3, 4]]
