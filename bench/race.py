"""Race the folds: the default study under --pruner none, median and race, side by side, and a replay.

``nox -s bench -- --race`` (``python -m bench.race``) runs ``hpsearch study --trials 50 --folds 5``
on mnist-5k, through the CLI, once per pruner and study seed (``--seeds 0 1``; each sets the
split, the weights and the sampler), one after the other, each in its own SQLite file, and one
reference no honest study can beat: ``single``, the same study with every trial scored on fold 1
alone under the median pruner (bench/single_split.py), the price of skipping K-fold. For each it
reports the wall time, complete and pruned trials, the best CV accuracy, and the time to
quality: seconds from the first trial's start until the study first held a complete trial
within 0.3 points of its own final best; then, averaged over the seeds, median's wall time over
the race's and the race's over the single split's (the K-fold premium); and what the single
split's pick scores on all K folds of its split.

It then replays the fold rules on each ``--pruner none`` study, which trained every trial in
full: trial by trial in their order, against the best trial complete so far, after folds 1-2
and 3-4 (the waves of two cores), the time each rule would have saved (the untrained folds'
share of the trial's time) and which trials tied with the final best (corrected resampled
t-test), the one-standard-error simplest among them, it would have cut. Writes bench/race.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from bench.cli_study import StudyRun, timed_study
from hpsearch.analysis.choose import choose, fold_scores
from hpsearch.config import PrunerConfig
from hpsearch.data import load_training
from hpsearch.search.race import verdict
from hpsearch.store import stored_run
from hpsearch.store.schema import TRIAL_FOLDS, TRIAL_REASON
from hpsearch.training import cross_validate, make_splits, plan_waves

RESULTS = Path(__file__).with_name("race.json")
# single: fold 1 alone, median pruner (bench/single_split.py); wilcoxon: folds as instances, in waves
PRUNERS = ("none", "median", "wilcoxon", "race", "single")
STUDY = "race-bench"
WITHIN = 0.003  # "within 0.3 points of its own final best"


def time_to_quality(trials: list[FrozenTrial]) -> dict[str, Any]:
    """Seconds from the first trial's start to its last one's end, the best CV accuracy, the states,
    and the seconds until a complete trial first came within 0.3 points of the final best."""
    done = sorted((t for t in trials if t.datetime_complete is not None), key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in done if t.datetime_start is not None)
    complete = [t for t in done if t.state == TrialState.COMPLETE and t.value is not None]
    in_complete = sum(t.duration.total_seconds() for t in complete if t.duration is not None)
    best = max(t.value for t in complete)
    reached = next(t for t in complete if t.value is not None and t.value >= best - WITHIN)
    return {
        "seconds": (done[-1].datetime_complete - start).total_seconds(),
        "best_accuracy": best,
        "to_quality_seconds": (reached.datetime_complete - start).total_seconds(),
        "to_quality_trial": reached.number,
        "seconds_in_complete_trials": in_complete,
        "trial_states": dict(Counter(t.state.name for t in done)),
        "cut_by": dict(Counter(_rule(t) for t in done if t.state == TrialState.PRUNED)),
    }


def _rule(t: FrozenTrial) -> str:
    """Which rule stopped a pruned trial, from its stored reason."""
    reason = str(t.user_attrs.get(TRIAL_REASON, ""))
    if "Wilcoxon" in reason:
        return "wilcoxon after a wave"
    if reason.startswith("stopped after fold"):
        return "race after a wave"
    if reason.startswith("pruned after"):
        return "epoch pruner"
    return reason.split(":")[0] or "unknown"


def on_all_folds(study: optuna.Study) -> dict[str, Any]:
    """The best trial of a single-split study, cross-validated on all K folds of the study's split."""
    defn, best = stored_run(study)[0], study.best_trial
    train = load_training(defn.data)[0]
    result = cross_validate(train, make_splits(train.y, defn.cv, train.classes), replace(defn.train, **best.params))
    return {
        "trial": best.number,
        "params": best.params,
        "fold_1_accuracy": best.value,
        "accuracy": result.mean["accuracy"],
        "folds": [f["accuracy"] for f in result.folds],
    }


def replay(trials: list[FrozenTrial], folds: int, per_wave: int, rule: str) -> dict[str, Any]:
    """What ``rule`` would have done to a study that trained every trial in full."""
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    choice = choose(*fold_scores(complete, "accuracy"), folds=folds, maximize=True)
    tied = set() if choice is None else {int(n) for n in choice.table.loc[choice.table["tied"], "trial"]}
    cfg = PrunerConfig(name="race", race_rule=rule)
    waves, kept, cut, saved, total = plan_waves(folds, per_wave), [], [], 0.0, 0.0
    for t in complete:
        scores = [f["accuracy"] for f in t.user_attrs[TRIAL_FOLDS]]
        seconds = t.duration.total_seconds() if t.duration is not None else 0.0
        total += seconds
        best = max(kept, key=lambda k: k.value or 0.0) if kept else None
        incumbent = [] if best is None else [f["accuracy"] for f in best.user_attrs[TRIAL_FOLDS]]
        trained: list[int] = []
        for wave in waves[:-1]:
            trained += wave
            if verdict(cfg, "accuracy", [scores[k] for k in trained], trained, incumbent, maximize=True):
                cut.append(t.number)
                saved += seconds * (1 - len(trained) / folds)
                break
        else:
            kept.append(t)
    simplest = None if choice is None else choice.simplest
    return {
        "rule": rule,
        "cut": len(cut),
        "complete": len(complete),
        "saved_share": saved / total if total else 0.0,
        "tied_cut": sorted(tied & set(cut)),
        "tied": sorted(tied),
        "simplest": simplest,
        "simplest_cut": simplest in cut,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="trials of each study (default 50)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="study seeds (default 0 1)")
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=PRUNERS)
    parser.add_argument("--keep", type=Path, help="keep the study files in this folder")
    args = parser.parse_args(argv)
    console = Console(width=120)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs: dict[str, StudyRun] = {}
    seen: dict[str, dict[str, Any]] = {}
    replays: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="hpsearch-race-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:  # interleaved: each seed runs every pruner before the next seed
            for pruner in args.pruners:
                key = f"{pruner}/seed {seed}"
                console.print(f"{key}: {args.trials} trials, {args.folds} folds, mnist-5k")
                options = ["--dataset", "mnist-5k", "--trials", str(args.trials), "--folds", str(args.folds)]
                db = folder / f"{pruner}-{seed}.db"
                single = pruner == "single"
                options += ["--pruner", "median" if single else pruner, "--seed", str(seed)]
                module = "bench.single_split" if single else "hpsearch"
                runs[key] = timed_study(db, STUDY, options, label=key, module=module)
                trials = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}").trials
                seen[key] = time_to_quality(trials)
                if single:  # what its pick scores where the K-fold studies score theirs
                    seen[key]["pick_on_all_folds"] = on_all_folds(
                        optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
                    )
                if pruner == "none":
                    replays[key] = [replay(trials, args.folds, 2, rule) for rule in ("forgiving", "paired")]
    results = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cli_runs": {key: asdict(run) for key, run in runs.items()},
        "studies": seen,
        "replays": replays,
        "means": _means(runs, seen, args.seeds),
    }
    _print(results, args, console)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


def _means(runs: dict[str, StudyRun], seen: dict[str, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Each pruner's CLI wall time, time to quality and best CV accuracy, averaged over the seeds,
    and the ratios the race is judged by (median's wall over the race's; the race's over the single split's)."""
    means: dict[str, Any] = {}
    for pruner in PRUNERS:
        keys = [f"{pruner}/seed {seed}" for seed in seeds if f"{pruner}/seed {seed}" in runs]
        if keys:
            means[pruner] = {
                "wall_seconds": sum(runs[k].seconds for k in keys) / len(keys),
                "to_quality_seconds": sum(seen[k]["to_quality_seconds"] for k in keys) / len(keys),
                "best_accuracy": sum(seen[k]["best_accuracy"] for k in keys) / len(keys),
            }
    ratios = {"median / race": ("median", "race"), "wilcoxon / race": ("wilcoxon", "race")}
    ratios |= {"race / single": ("race", "single")}
    ratios |= {"median / single": ("median", "single"), "none / race": ("none", "race")}
    for name, (top, bottom) in ratios.items():
        if top in means and bottom in means:
            means[name] = {
                "wall": means[top]["wall_seconds"] / means[bottom]["wall_seconds"],
                "best_accuracy_points": 100 * (means[top]["best_accuracy"] - means[bottom]["best_accuracy"]),
            }
    return means


def _print(results: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    table = Table(title=f"{args.trials}-trial studies on mnist-5k, {args.folds} folds")
    for column in ("pruner / seed", "CLI wall s", "trial time s", "to within 0.3 pt s", "best CV acc", "trials"):
        table.add_column(column, justify="left" if column in ("pruner / seed", "trials") else "right")
    for key, v in results["studies"].items():
        states = ", ".join(f"{n} {state.lower()}" for state, n in v["trial_states"].items())
        if v.get("cut_by"):
            states += " (" + ", ".join(f"{n} by the {rule}" for rule, n in v["cut_by"].items()) + ")"
        run = results["cli_runs"][key]
        quality = f"{v['to_quality_seconds']:.0f} (#{v['to_quality_trial']})"
        table.add_row(key, f"{run['seconds']:.0f}", f"{v['seconds']:.0f}", quality, f"{v['best_accuracy']:.4f}", states)
    console.print(table)
    for key, v in results["studies"].items():
        if "pick_on_all_folds" in v:
            pick = v["pick_on_all_folds"]
            console.print(
                f"{key}: its pick, trial {pick['trial']}, scored {pick['fold_1_accuracy']:.4f} on fold 1 and "
                f"{pick['accuracy']:.4f} on all folds ({', '.join(f'{a:.4f}' for a in pick['folds'])})"
            )
    for name, v in results["means"].items():
        if "wall" in v:
            console.print(
                f"mean over the seeds, {name}: wall time {v['wall']:.2f}x, "
                f"best CV accuracy {v['best_accuracy_points']:+.2f} points"
            )
    for key, rules in results["replays"].items():
        for r in rules:
            console.print(
                f"replay on {key}, rule {r['rule']}: would have cut {r['cut']} of {r['complete']} trials and saved "
                f"{r['saved_share']:.0%} of the trial time; tied with the best and cut: {r['tied_cut'] or 'none'} "
                f"(tied: {len(r['tied'])}); the 1-SE simplest (#{r['simplest']}) "
                + ("cut" if r["simplest_cut"] else "kept")
            )


if __name__ == "__main__":
    sys.exit(main())
