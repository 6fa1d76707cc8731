"""A storage that rides out a database restart: every call waits, with backoff, for a bounded time.

A PostgreSQL server restarted for maintenance or a failover refuses connections for seconds to
minutes. ``PatientStorage`` retries any call that failed because the connection was lost (not a
call the database refused), first after 0.5 s and then at most every 5 s, until ``patience``
seconds have passed since the first failure; then the error goes up as before and the worker
ends with one line (``open.storage_lost``). The engine checks each pooled connection before use
(``pool_pre_ping``), so connections the restart killed are replaced rather than reused.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy.exc

_log = logging.getLogger("hpsearch")
_FIRST_WAIT, _MAX_WAIT = 0.5, 5.0


def connection_lost(error: BaseException) -> bool:
    """Whether a lost or refused connection is behind ``error`` (Optuna wraps SQLAlchemy's errors)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def patiently(patience: float, call: Callable[[], Any]) -> Any:
    """``call()``, called again while it fails for a lost connection, for up to ``patience`` seconds."""
    deadline, wait = None, _FIRST_WAIT
    while True:
        try:
            return call()
        except Exception as e:
            now = time.monotonic()
            deadline = deadline or now + patience
            if not connection_lost(e) or now >= deadline:
                raise
            if wait == _FIRST_WAIT:
                _log.warning("the storage stopped answering; waiting up to %.0f s for it", patience)
            time.sleep(min(wait, deadline - now))
            wait = min(2 * wait, _MAX_WAIT)


def _patient(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        return patiently(self.patience, lambda: method(self, *args, **kwargs))

    return call


class PatientStorage(optuna.storages.RDBStorage):
    """An RDBStorage whose calls wait up to ``patience`` seconds for a database that stopped answering."""

    patience: float = 0.0


_PUBLIC = [
    name
    for name, value in vars(optuna.storages.RDBStorage).items()
    if callable(value) and not name.startswith("_") and name not in ("remove_session",)
]
# and the private ones Optuna's cache in front of every study calls directly
_CALLED_BY_THE_CACHE = (
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
    "_get_trials",
    "_get_stale_trial_ids",
)
for _name in [*_PUBLIC, *_CALLED_BY_THE_CACHE]:
    if hasattr(optuna.storages.RDBStorage, _name):
        setattr(PatientStorage, _name, _patient(getattr(optuna.storages.RDBStorage, _name)))
