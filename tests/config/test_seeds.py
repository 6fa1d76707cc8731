"""One study seed, independent streams: two study seeds share no fold's weights or batches."""

from __future__ import annotations

import torch

from hpsearch.config import TrainConfig, derive
from hpsearch.training import Trainer


def _initial_weights(seed: int, folds: int = 3) -> list[torch.Tensor]:
    x, y = torch.rand(60, 8), torch.randint(0, 3, (60,))
    trainer = Trainer(x, y, [torch.arange(60)] * folds, 3, TrainConfig(depth=1, width=4, seed=seed))
    return [w.clone() for w in trainer.weights[0]]  # fold k's first-layer weights


def test_seed_0_and_seed_1_give_different_fold_0_initial_weights() -> None:
    zero, one = _initial_weights(0), _initial_weights(1)
    assert not torch.equal(zero[0], one[0])
    # with seed + k, study seed 1's fold 0 was study seed 0's fold 1: now no fold of one is a fold of the other
    assert all(not torch.equal(a, b) for a in zero for b in one)
    assert torch.equal(zero[0], _initial_weights(0)[0])  # and the same seed gives the same weights


def test_roles_and_indices_draw_distinct_seeds() -> None:
    seeds = [derive(0, role) for role in ("hold-out", "folds", "sampler", "train")]
    seeds += [derive(s, "train", k) for s in (0, 1) for k in range(5)] + [derive(0, "sampler", n) for n in range(5)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**32 for s in seeds)
