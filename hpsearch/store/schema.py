"""The names of what hpsearch stores on a study and its trials, and the words for trial states.

Study attributes: ``STUDY_DEFINITION`` (``Definition.to_dict()``), ``STUDY_DATA`` (the data
summary with its fingerprint), ``STUDY_VERSIONS`` (the libraries it was created under) and
``STUDY_FINAL_TESTS`` (the list of ``final-test`` results, oldest first), ``STUDY_OUTER_FOLD`` (an outer
fold study of ``hpsearch nested``: its chosen trial scored on the outer fold's held-out rows). Trial attributes:
``TRIAL_FOLDS`` (figures of each finished fold), ``TRIAL_MEAN`` and ``TRIAL_STD`` (over those
folds), ``TRIAL_PARAMS_COUNT``, ``TRIAL_MACS``, ``TRIAL_REASON`` (why a trial was pruned or
failed), ``TRIAL_WORKER`` (``host:pid`` of the process that ran it), ``TRIAL_DEVICE`` (the device it
trained on: ``cpu``, ``cuda (NVIDIA H200)``) and ``TRIAL_RETRY_OF`` (on a retry: the number of
the trial whose worker died).
"""

from __future__ import annotations

from importlib.metadata import version

from optuna.trial import TrialState

from hpsearch.version import __version__

STUDY_DEFINITION = "hpsearch.definition"
STUDY_DATA = "hpsearch.data"
STUDY_VERSIONS = "hpsearch.versions"
STUDY_FINAL_TESTS = "hpsearch.final_tests"
STUDY_OUTER_FOLD = "hpsearch.outer_fold"
TRIAL_FOLDS = "folds"
TRIAL_MEAN = "cv_mean"
TRIAL_STD = "cv_std"
TRIAL_PARAMS_COUNT = "n_params"
TRIAL_MACS = "macs"  # multiply-adds of one forward pass for one row
TRIAL_REASON = "reason"
TRIAL_WORKER = "worker"  # host:pid of the worker process that ran the trial
TRIAL_DEVICE = "device"  # the device the trial trained on: "cpu", "cuda (NVIDIA H200)"
TRIAL_RETRY_OF = "retry_of"  # on a retried trial: the number of the trial whose worker stopped beating

# What --trials counts, as Optuna's n_trials does: trials that ran to a verdict. A failed trial
# (Ctrl-C, a lost worker) does not count: it is retried, or run again when the study resumes.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STATE_WORDS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def library_versions() -> dict[str, str]:
    """The versions that decide a study's figures: hpsearch, torch, optuna, scikit-learn and numpy."""
    return {"hpsearch": __version__} | {name: version(name) for name in ("torch", "optuna", "scikit-learn", "numpy")}
