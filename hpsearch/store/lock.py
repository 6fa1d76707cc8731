"""The study's lock: workers take it to start a trial, final-test to append its result.

``pg_advisory_lock`` on PostgreSQL, on the worker's own pooled connection, and ``flock(2)`` on
the folder of an SQLite file (not the file: closing any descriptor of it drops SQLite's own POSIX
locks); a killed worker's lock is released by the server or the kernel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy

from hpsearch.store.patience import CLOCK, patiently
from hpsearch.store.recovery import STORAGE_ERRORS
from hpsearch.store.urls import engine_url, sqlite_path


class StudyLock:
    """No lock, for in-memory SQLite and other servers: one worker, or the best effort."""

    def acquire(self) -> None: ...
    def release(self) -> None: ...  # does nothing when not held
    def close(self) -> None: ...


class _FolderLock(StudyLock):
    def __init__(self, folder: Path) -> None:
        self._fd, self._held = os.open(folder, os.O_RDONLY), False

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if self._held:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        self.release()
        os.close(self._fd)


class _AdvisoryLock(StudyLock):
    """A session-level advisory lock, taken on the worker's one pooled connection (``open.SERVER_POOL``).

    Taken there, it costs no connection of its own: a worker holds one connection, whether it
    waits for the lock, holds it, or trains. (A lock on a second connection would let workers that
    wait for it fill a busy server's slots while the worker holding it waits for a slot for its
    next call: none would go on.) With a pool of one and no overflow, its calls come back to the
    same server session, which holds the lock until it is released or the connection closes: the
    worker ends, is killed, or the server restarts (a connection the restart killed held nothing).
    """

    def __init__(self, engine: sqlalchemy.Engine, study_name: str, patience: float, owned: bool) -> None:
        digest = hashlib.sha256(f"hpsearch:{study_name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._engine, self._owned, self._patience = engine, owned, patience
        self._held = False

    def _call(self, function: str) -> None:
        with self._engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"SELECT {function}(:key)"), {"key": self._key})

    def acquire(self) -> None:
        start = time.perf_counter()
        patiently(self._patience, lambda: self._call("pg_advisory_lock"))
        self._held = True
        if threading.current_thread() is threading.main_thread():
            CLOCK.lock_seconds += time.perf_counter() - start

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(*STORAGE_ERRORS):  # a connection that is gone holds no lock
                self._call("pg_advisory_unlock")

    def close(self) -> None:
        self.release()
        if self._owned:
            self._engine.dispose()


def open_lock(
    url: str, study_name: str, storage: optuna.storages.BaseStorage | None = None, patience: float = 0.0
) -> StudyLock:
    """The lock that all workers of study ``study_name`` in storage ``url`` take to start a trial.

    Args:
        storage: the worker's storage, opened from ``url``: on PostgreSQL, the lock is taken on its
            pooled connection (None: on a connection of the lock's own).
        patience: seconds to wait for a database server that stopped answering or is full.
    """
    path = sqlite_path(url)
    if path is not None:
        return _FolderLock(path.resolve().parent)
    if url.startswith(("postgresql:", "postgresql+")):
        if isinstance(storage, optuna.storages.RDBStorage):
            return _AdvisoryLock(storage.engine, study_name, patience, owned=False)
        engine = sqlalchemy.create_engine(engine_url(url), pool_pre_ping=True, pool_size=1, max_overflow=0)
        return _AdvisoryLock(engine, study_name, patience, owned=True)
    return StudyLock()


@contextlib.contextmanager
def study_locked(
    url: str, study_name: str, storage: optuna.storages.BaseStorage | None = None, patience: float = 0.0
) -> Iterator[None]:
    """Hold the study's lock for a read-modify-write of its attributes (e.g. ``final-test``'s list)."""
    lock = open_lock(url, study_name, storage, patience)
    try:
        lock.acquire()
        yield
    finally:
        lock.close()
