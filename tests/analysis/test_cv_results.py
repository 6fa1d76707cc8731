"""cv_results_'s ranks, and the t interval of nested CV's outer scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hpsearch.analysis.cv_results import _ranks
from hpsearch.analysis.intervals import t_interval


def test_ranks_put_the_best_first_share_ties_and_put_missing_scores_last() -> None:
    scores = np.array([0.9, np.nan, 0.95, 0.9, 0.5])
    assert _ranks(scores, maximize=True).tolist() == [2, 5, 1, 2, 4]
    assert _ranks(scores, maximize=False).tolist() == [2, 5, 4, 2, 1]


def test_the_t_interval_is_scipys() -> None:
    values = np.array([0.97, 0.98, 0.95, 0.99, 0.96])
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert t_interval(values) == pytest.approx(expected, rel=1e-12)
    assert all(math.isnan(v) for v in t_interval(values[:1]))
