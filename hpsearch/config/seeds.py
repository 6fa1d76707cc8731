"""Independent seed streams from one study seed: one per role (hold-out, folds, sampler, training)
and per index (trial n, fold k), so that two study seeds share no stream.

(Seeding fold k with ``seed + k`` made study seed 1's fold 0 study seed 0's fold 1.) A fold-model's
seed is split once more into its initial weights, its batch order and its dropout masks
(``model_streams``): three generators seeded alike would draw the same bits.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Role = Literal["hold-out", "folds", "sampler", "train", "weights", "batches", "dropout", "outer"]
_ROLES: dict[str, int] = {
    "hold-out": 0,
    "folds": 1,
    "sampler": 2,
    "train": 3,
    "weights": 4,
    "batches": 5,
    "dropout": 6,
    "outer": 7,  # nested CV's outer folds (hpsearch nested), apart from every study's own folds
}


def derive(seed: int, role: Role, *index: int) -> int:
    """A 32-bit seed for ``role`` (and, e.g., trial n or fold k) from the study seed, by numpy's SeedSequence."""
    import numpy as np  # here, not at the top: the CLI imports config before it needs numpy

    # the count of indices goes in too: SeedSequence([s, r]) and SeedSequence([s, r, 0]) are the same stream
    return int(np.random.SeedSequence([seed, _ROLES[role], len(index), *index]).generate_state(1)[0])


class Streams(NamedTuple):
    """The three seeds of one fold-model: its initial weights, its batch order, its dropout masks."""

    weights: int
    batches: int
    dropout: int


def model_streams(model_seed: int) -> Streams:
    """Independent streams of a fold-model's seed (``derive(study_seed, "train", k)`` for fold k)."""
    return Streams(derive(model_seed, "weights"), derive(model_seed, "batches"), derive(model_seed, "dropout"))
