"""The price of skipping K-fold: ``hpsearch study`` with every trial scored on fold 1 alone.

``python -m bench.single_split study OPTIONS`` is ``hpsearch study OPTIONS`` except that the
study keeps only the first of its K seeded folds: each trial trains one model on the other K-1
folds' rows and is judged on fold 1's rows, the single split a search without cross-validation
would use (the same rows as fold 1 of the K-fold studies beside it). No honest K-fold study can
be cheaper; the race bench reports how far above it each one lies. A bench instrument, not an
hpsearch option: the tool does not offer a search that skips K-fold.
"""

from __future__ import annotations

from typing import Any

import hpsearch.search.study as study_module
from hpsearch.cli import run

_every_fold = study_module.make_splits


def _first_fold(*args: Any, **kwargs: Any) -> Any:
    return _every_fold(*args, **kwargs)[:1]


if __name__ == "__main__":
    study_module.make_splits = _first_fold
    run()
