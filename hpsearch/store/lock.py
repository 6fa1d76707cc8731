"""The study's lock: workers take it to start a trial, final-test to append its result.

``pg_advisory_xact_lock`` on PostgreSQL and ``flock(2)`` on the folder of an SQLite file (not
the file: closing any descriptor of it drops SQLite's own POSIX locks); a killed worker's lock
is released by the server or the kernel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy
from sqlalchemy.pool import NullPool

from hpsearch.store.patience import connection_lost
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
    def __init__(self, url: str, study_name: str, patience: float) -> None:
        digest = hashlib.sha256(f"hpsearch:{study_name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._engine = sqlalchemy.create_engine(engine_url(url), poolclass=NullPool)
        self._conn: sqlalchemy.Connection | None = None
        self._patience = patience

    def acquire(self) -> None:
        deadline = time.monotonic() + self._patience
        while True:
            try:
                self._conn = self._engine.connect()
                self._conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._key})
                return
            except STORAGE_ERRORS as e:  # a server restarting: wait for it, as PatientStorage does
                self.release()
                if not connection_lost(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(2.0)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*STORAGE_ERRORS):  # a dead connection holds no lock
                conn.close()  # the rollback ends the transaction, and the lock with it

    def close(self) -> None:
        self.release()
        self._engine.dispose()


def open_lock(url: str, study_name: str, patience: float = 0.0) -> StudyLock:
    """The lock that all workers of study ``study_name`` in storage ``url`` take to start a trial."""
    path = sqlite_path(url)
    if path is not None:
        return _FolderLock(path.resolve().parent)
    if url.startswith(("postgresql:", "postgresql+")):
        return _AdvisoryLock(url, study_name, patience)
    return StudyLock()


@contextlib.contextmanager
def study_locked(url: str, study_name: str) -> Iterator[None]:
    """Hold the study's lock for a read-modify-write of its attributes (e.g. ``final-test``'s list)."""
    lock = open_lock(url, study_name)
    try:
        lock.acquire()
        yield
    finally:
        lock.close()
