"""Crash recovery: heartbeats of running trials, and a retry for each trial whose worker stopped.

A storage opened with ``heartbeat=`` has each running trial write a heartbeat every
``heartbeat`` seconds; a trial silent for ``GRACE_BEATS`` beats, or one that never beat
(``fail_unbeaten``), lost its worker (killed, or its machine lost): the next worker that looks
marks it failed and queues a copy with the same parameters (at most ``MAX_RETRY`` times), which
the next free worker runs. Only such trials are retried, never a trial that raised.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

import optuna
import sqlalchemy
import sqlalchemy.exc

from hpsearch.store.patience import patiently
from hpsearch.store.schema import (
    TRIAL_FOLDS,
    TRIAL_MEAN,
    TRIAL_REASON,
    TRIAL_RETRY_OF,
    TRIAL_STD,
    TRIAL_WORKER,
)

MAX_RETRY = 2  # a trial that took down two workers is more likely the cause than the victim
GRACE_BEATS = 3  # missed heartbeats before a running trial counts as lost; one late beat is not a death
# Errors of a storage that stopped answering; Optuna wraps some SQLAlchemy errors in its own
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)


@contextlib.contextmanager
def quiet_heartbeats() -> Iterator[None]:
    """Keep heartbeat threads whose storage went away from printing tracebacks: the main thread
    meets the same error at its next write and reports it in one line."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not isinstance(args.exc_value, STORAGE_ERRORS):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def first_beat(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> None:
    """Write the first heartbeat of a new trial now (Optuna's heartbeat thread may be late)."""
    if isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None:
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
        storage.record_heartbeat(trial_id)


def fail_unbeaten(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Fail and retry the running trials that never wrote a heartbeat (Optuna ignores them).

    Call it under the study lock only: a worker writes its new trial's first heartbeat before it
    releases the lock, so such a trial's worker died, or lost the storage, in between.
    """
    if not isinstance(storage, optuna.storages.RDBStorage) or storage.get_heartbeat_interval() is None:
        return
    query = sqlalchemy.text(
        "SELECT t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE s.study_name = :name AND t.state = 'RUNNING' AND h.trial_id IS NULL"
    )

    def unbeaten() -> list[int]:
        with storage.engine.connect() as connection:
            return [row[0] for row in connection.execute(query, {"name": study.study_name})]

    lost: list[int] = patiently(getattr(storage, "patience", 0.0), unbeaten)
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial_id in lost:
        if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL) and retry is not None:
            retry(study, storage.get_trial(trial_id))


class RetryStale:
    """Queue a copy of a stale trial, marked ``TRIAL_RETRY_OF``, without the figures it had reached."""

    def __init__(self, max_retry: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        dropped = (TRIAL_FOLDS, TRIAL_MEAN, TRIAL_STD, TRIAL_REASON, TRIAL_WORKER)
        attrs = {k: v for k, v in trial.user_attrs.items() if k not in dropped}
        trial.user_attrs = {**attrs, TRIAL_RETRY_OF: trial.number}  # a copy: Optuna deep-copies it for us
        self._retry(study, trial)
