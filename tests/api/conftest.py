"""The estimators' tests train hundreds of tiny MLPs: one torch thread each, restored after.

A tiny model's products are too small to share among threads, and on a busy machine two
threads wait on each other at every product: scikit-learn's estimator checks took 50 s with
two threads on two loaded cores and 3 s with one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
