"""Learning curves of a study definition's first wave, every epoch, for replaying epoch rules on them.

An epoch rule (a pruner inside a wave) is judged on what it would have stopped: that needs each
trial's whole curve, which a pruned study never trains. ``python -m bench.curves --config
studies/fashion-mnist-hour.toml --trials 16`` samples configurations from the definition's space
(Optuna's RandomSampler, seeded per trial from the study seed's sampler stream), trains the
first wave's folds (folds 1-2 of the study's own split, as ``--pruner race`` trains them) for
every epoch of the schedule, and records after each epoch each fold's validation figures and the
epoch's seconds. The test split is never read. Results go to ``bench/curves-<stem>.json``, one
trial at a time, so a stopped run resumes where it was; ``bench/epoch_rules.py`` replays the
rules on them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import optuna

from hpsearch.config import derive, load_definition
from hpsearch.data import load_training
from hpsearch.search.space import suggest
from hpsearch.training import EpochCallback, cross_validate, make_splits, plan_waves


def collect(config: Path, trials: int, out: Path) -> dict[str, Any]:
    """Train the first wave of ``trials`` sampled configurations (resuming ``out``); the curves."""
    defn = load_definition(config)
    doc: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"config": str(config), "trials": []}
    train = load_training(defn.data)[0]
    splits = make_splits(train.y, defn.cv, train.classes)
    wave = plan_waves(defn.cv.folds, defn.pruner.wave_folds)[0]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for number in range(len(doc["trials"]), trials):
        sampler = optuna.samplers.RandomSampler(seed=derive(defn.seed, "sampler", number))
        trial = optuna.create_study(sampler=sampler).ask()
        cfg = suggest(trial, defn.space, defn.train)
        epochs: list[dict[str, Any]] = [{"at": time.perf_counter()}]
        cross_validate(train, [splits[k] for k in wave], cfg, on_epoch=_recorder(epochs), score_every_epoch=True)
        epochs = epochs[1:]
        doc["trials"].append({"number": number, "params": trial.params, "folds": [k + 1 for k in wave],
                              "epochs": epochs})  # fmt: skip
        out.write_text(json.dumps(doc, indent=1) + "\n")
        mean = sum(f["accuracy"] for f in epochs[-1]["folds"]) / len(wave)
        seconds = sum(e["seconds"] for e in epochs)
        print(f"trial {number}: {trial.params} -> {mean:.4f} after {len(epochs)} epochs, {seconds:.0f} s", flush=True)
    return doc


def _recorder(log: list[dict[str, Any]]) -> EpochCallback:
    """An epoch callback appending each epoch's folds' figures and seconds to ``log`` (whose first
    entry holds the start time)."""

    def record(epoch: int, _: list[float], figures: list[dict[str, float]] | None) -> None:
        now = time.perf_counter()
        log.append({"epoch": epoch + 1, "seconds": now - log[-1].get("at", now), "folds": figures, "at": now})

    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("studies/fashion-mnist-hour.toml"))
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    collect(args.config, args.trials, Path(__file__).with_name(f"curves-{args.config.stem}.json"))


if __name__ == "__main__":
    main()
