"""The search: create or resume a study, the objective, the space, sampler and pruner, the workers."""

from hpsearch.search.study import Outcome, Rows, complete_trials, finished_trials, open_study, run_study
from hpsearch.search.workers import WorkerConfig, available_cores

__all__ = [
    "Outcome",
    "Rows",
    "WorkerConfig",
    "available_cores",
    "complete_trials",
    "finished_trials",
    "open_study",
    "run_study",
]
