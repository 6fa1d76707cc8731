"""A storage that rides out a database restart or a full server: every call waits, with backoff, for a bounded time.

A PostgreSQL server restarted for maintenance or a failover refuses connections for seconds to
minutes; one that serves ``max_connections`` clients already refuses the next ("too many
clients"). ``PatientStorage`` retries any call that failed because the connection was lost or
refused (not a call the database refused), first after 0.5 s and then at most every 5 s, until
``patience`` seconds have passed since the first failure; then the error goes up as before and
the worker ends with one line (``open.storage_lost``). The engine checks each pooled connection
before use (``pool_pre_ping``), so connections the restart killed are replaced rather than reused.

``CLOCK`` counts the calls of this process's main thread and the seconds they took (a
``perf_counter`` each), for the load bench (bench/load.py): the storage's share of a worker's time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy.exc

_log = logging.getLogger("hpsearch")
_FIRST_WAIT, _MAX_WAIT = 0.5, 5.0
# PostgreSQL's words for a server at max_connections (SQLSTATE 53300, which the drivers do not
# carry for a refused connection) and for one still starting up after a restart (57P03)
_BUSY = ("too many clients", "remaining connection slots are reserved", "the database system is starting up")
# and for one going down for a restart (57P01 admin_shutdown, 57P03 while it shuts down): it was
# there a moment ago, so a worker opening the storage then waits for it as for a full one
_RESTARTING = ("terminating connection due to administrator command", "the database system is shutting down")


@dataclass
class StorageClock:
    """Storage calls of this process's main thread (the one that trains) and the seconds spent in them."""

    calls: int = 0
    seconds: float = 0.0  # in PatientStorage's calls, waits for a restarted server included
    lock_seconds: float = 0.0  # waiting for the study's lock (store/lock.py)


CLOCK = StorageClock()
_under_way = threading.local()  # a storage call of this thread is under way


def connection_lost(error: BaseException) -> bool:
    """Whether a lost or refused connection is behind ``error`` (Optuna wraps SQLAlchemy's errors),
    or a wait for the worker's pooled connection that ran out (the other thread held it)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if isinstance(cause, sqlalchemy.exc.TimeoutError):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def server_busy(error: BaseException) -> bool:
    """Whether the server refused a new connection for now: every slot taken, or it is starting up."""
    cause: BaseException | None = error
    while cause is not None:  # Optuna's own error may wrap the driver's
        if any(words in str(cause) for words in _BUSY):
            return connection_lost(error)
        cause = cause.__cause__ or cause.__context__
    return False


def server_restarting(error: BaseException) -> bool:
    """Whether the server ended the connection because it is shutting down (a restart, a failover)."""
    cause: BaseException | None = error
    while cause is not None:
        if any(words in str(cause) for words in _RESTARTING):
            return connection_lost(error)
        cause = cause.__cause__ or cause.__context__
    return False


def patiently(
    patience: float, call: Callable[[], Any], retry: Callable[[BaseException], bool] = connection_lost
) -> Any:
    """``call()``, called again while it fails for a lost connection (``retry``), for up to ``patience`` seconds."""
    deadline, wait = None, _FIRST_WAIT
    while True:
        try:
            return call()
        except Exception as e:
            now = time.monotonic()
            deadline = deadline or now + patience
            if not retry(e) or now >= deadline:
                raise
            if wait == _FIRST_WAIT:
                what = "has no free connection (max_connections)" if server_busy(e) else "stopped answering"
                _log.warning("the storage %s; waiting up to %.0f s for it", what, patience)
            time.sleep(min(wait, deadline - now))
            wait = min(2 * wait, _MAX_WAIT)


def _patient(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: PatientStorage, *args: Any, **kwargs: Any) -> Any:
        if getattr(_under_way, "call", False):  # a call inside a call: the outer one waits, and is counted
            return method(self, *args, **kwargs)
        _under_way.call, start = True, time.perf_counter()
        try:
            return patiently(self.patience, lambda: method(self, *args, **kwargs))
        except BaseException:
            # Optuna leaves its session open when an error that is not SQLAlchemy's ends a call
            # (a trial already finished, no such trial): its transaction would keep the worker's
            # one pooled connection from the other thread
            self.remove_session()
            raise
        finally:
            _under_way.call = False
            if threading.current_thread() is threading.main_thread():
                CLOCK.calls += 1
                CLOCK.seconds += time.perf_counter() - start

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
