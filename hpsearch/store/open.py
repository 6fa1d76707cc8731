"""Open an Optuna storage and the studies in it, turning every way it can fail into one line."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage
from sqlalchemy.pool import NullPool

from hpsearch.config import Definition, stored_definition
from hpsearch.errors import ConfigError, HpsearchError, StorageError, did_you_mean
from hpsearch.store.patience import PatientStorage, connection_lost, patiently, server_busy, server_restarting
from hpsearch.store.recovery import GRACE_BEATS, MAX_RETRY, STORAGE_ERRORS, RetryStale
from hpsearch.store.schema import STUDY_DATA, STUDY_DEFINITION
from hpsearch.store.urls import engine_url, redact, sqlite_path

_SQLITE_MAGIC = b"SQLite format 3\x00"
# A worker makes one storage call at a time (its heartbeat thread now and then another): one
# pooled connection, which the two threads take in turn, and none in overflow. Each worker holds
# one connection, the study's lock included (store/lock.py), instead of SQLAlchemy's 5 + 10.
SERVER_POOL: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 0, "pool_timeout": 30}


def storage_lost(url: str, error: BaseException) -> StorageError | None:
    """The one line for a storage that stopped answering mid-run, if a storage error is behind ``error``.

    (When a trial's end cannot be written, Optuna raises an AssertionError of its own while
    handling the storage error, so the whole chain is searched.)
    """
    if isinstance(error, HpsearchError | KeyboardInterrupt):
        return None
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, STORAGE_ERRORS):
        cause = cause.__context__
    if cause is None:
        return None
    return StorageError(
        f"the storage {redact(url)} stopped answering: {first_line(cause)}; the trials finished before are kept there: "
        "run the same command again once it is back"
    )


def watch_file(url: str) -> Callable[[], None]:
    """A check that the SQLite file is still the one the run opened: an open SQLite connection
    would go on writing into a moved or deleted file, where no one finds the trials."""
    path = sqlite_path(url)
    if path is None:
        return lambda: None
    first = path.stat().st_ino

    def check() -> None:
        if not path.exists() or path.stat().st_ino != first:
            raise StorageError(
                f"the study file {path} was moved or removed while the study ran; the trials finished before are "
                "in the file that was there: put it back and run the same command again"
            )

    return check


def _is_sqlite(path: Path) -> bool:
    if path.is_dir():
        return False
    with path.open("rb") as f:
        head = f.read(16)
    return head in (b"", _SQLITE_MAGIC)  # an empty file is a fresh database


def open_storage(
    url: str, *, read_only: bool = False, heartbeat: int | None = None, patience: float = 0.0
) -> optuna.storages.RDBStorage:
    """Open an Optuna storage, turning every way it can fail into one StorageError line.

    Args:
        url: an Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``).
        read_only: for commands that only read: a missing SQLite file is an error, not a new
            empty database, and a database without Optuna's tables is left as it is (Optuna would
            create them) and called empty.
        heartbeat: for workers: seconds between the heartbeats of a running trial; a trial
            silent for ``GRACE_BEATS`` beats is failed and retried (see ``recovery``).
        patience: seconds every call waits for a database server that stopped answering, and
            opening waits for one that has no free connection (max_connections; see
            ``patience``); SQLite files wait for their lock instead.

    Raises:
        StorageError: the file is missing (when it must exist), is not an SQLite database or is
            corrupt, the server cannot be reached, or the URL names no known database driver.
    """
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path, read_only)
    # Several local workers share one SQLite file: a writer waits up to a minute for the lock
    # instead of failing at once (SQLite's default is 5 s), which 2-4 workers never come near.
    server = not url.startswith("sqlite:")
    engine_kwargs = SERVER_POOL if server else {"connect_args": {"timeout": 60}}
    beats: dict[str, Any] = {}
    if heartbeat is not None and (path is not None or not url.startswith("sqlite:")):  # not in memory: one thread
        beats = {
            "heartbeat_interval": heartbeat,
            "grace_period": GRACE_BEATS * heartbeat,
            "heartbeat_stale_trial_callback": RetryStale(MAX_RETRY),
        }

    def opened() -> PatientStorage:
        if server:
            # Optuna's set-up holds a connection while it takes another (to stamp a new
            # database's schema, to check the schema's version): done here on connections of its
            # own, one at a time, so that the worker's pool is of one
            setup = {"poolclass": NullPool}
            RDBStorage(engine_url(url), engine_kwargs=setup, skip_compatibility_check=True).engine.dispose()
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = PatientStorage(
                engine_url(url),
                engine_kwargs=dict(engine_kwargs),
                skip_compatibility_check=server,
                skip_table_creation=server,
                **beats,
            )
        if server:
            _check_schema(storage, url)
        return storage

    there = False

    def retry(e: BaseException) -> bool:
        # a server at max_connections lets this worker in once another leaves, and one that ended
        # the connection to restart is back soon (it refuses connections meanwhile); one that
        # refuses for any other reason from the start (down, wrong password) is said at once
        nonlocal there
        there = there or server_busy(e) or server_restarting(e)
        return there and connection_lost(e)

    error: BaseException | None = None
    for attempt in range(3):
        try:
            if read_only:
                _require_tables(url)
            storage: PatientStorage = patiently(patience if server else 0.0, opened, retry=retry)
            storage.patience = patience if server else 0.0
            return storage
        except (*STORAGE_ERRORS, ImportError, ValueError, RuntimeError) as e:
            error = e
            # workers that start together on an empty database race to create its tables
            if not isinstance(e, sqlalchemy.exc.IntegrityError) and "already exists" not in str(e):
                break
            time.sleep(1 + attempt if attempt < 2 else 0)
    raise StorageError(f"cannot open storage {redact(url)}: {first_line(error)}")


def _check_schema(storage: RDBStorage, url: str) -> None:
    """Refuse a database whose tables another Optuna version set up (Optuna's own check, one call at a time)."""
    current, head = storage.get_current_version(), storage.get_head_version()
    if current != head:
        storage.engine.dispose()
        raise StorageError(
            f"{redact(url)} holds Optuna tables of schema {current}, this Optuna {optuna.__version__} needs {head}: "
            f"upgrade them with `optuna storage upgrade --storage URL`, or use the Optuna that set them up"
        )


def first_line(error: BaseException | None) -> str:
    """The first line of an error's text (the driver's, behind Optuna's wrapper), or its type's name."""
    if isinstance(error, optuna.exceptions.StorageInternalError) and error.__cause__ is not None:
        error = error.__cause__  # Optuna's text blames "invalid data"; the driver's says what happened
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_sqlite_file(path: Path, read_only: bool) -> None:
    if not path.exists():
        if read_only:
            raise StorageError(f"no such study file: {path}")
        if not path.parent.exists():
            raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")
        return
    if not _is_sqlite(path):
        raise StorageError(f"{path} is not an SQLite database")
    if path.stat().st_size == 0:
        return
    try:  # read-only, so a damaged file is not made worse
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as e:
        raise StorageError(f"{path} is a damaged SQLite database: {e}") from None
    if verdict is None or verdict[0] != "ok":
        raise StorageError(f"{path} is a damaged SQLite database: {verdict[0] if verdict else 'no verdict'}")


def _require_tables(url: str) -> None:
    """Refuse a database without Optuna's tables before Optuna would create them."""
    engine = sqlalchemy.create_engine(engine_url(url), poolclass=NullPool)
    try:
        has = sqlalchemy.inspect(engine).has_table("studies")
    finally:
        engine.dispose()
    if not has:
        raise StorageError(f"{redact(url)} holds no study")


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close the storage's database connections (a server's connections would otherwise linger)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.remove_session()
        storage.engine.dispose()


def load_study(url: str, study_name: str | None) -> optuna.Study:
    """Open an existing study for reading: the one named, or the only one in the storage.

    Raises:
        StorageError: the storage cannot be opened or holds no study.
        ConfigError: no study of that name (with the near miss), or several and no name given.
    """
    storage = open_storage(url, read_only=True)
    try:
        names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
    except STORAGE_ERRORS as e:
        raise StorageError(f"cannot read {redact(url)}: {first_line(e)}") from None
    if not names:
        raise StorageError(f"{redact(url)} holds no study")
    if study_name is None:
        if len(names) > 1:
            raise ConfigError(
                f"{redact(url)} holds {len(names)} studies ({', '.join(names)}): pick one with --study-name"
            )
        study_name = names[0]
    if study_name not in names:
        raise ConfigError(f"no study {study_name!r} in {redact(url)}{did_you_mean(study_name, names, label='studies')}")
    return optuna.load_study(study_name=study_name, storage=storage)


def stored_run(study: optuna.Study) -> tuple[Definition, dict[str, Any]]:
    """The Definition and the data summary an hpsearch study was created with.

    Raises:
        StorageError: the study was not made by hpsearch.
    """
    raw = study.user_attrs.get(STUDY_DEFINITION)
    if raw is None:
        raise StorageError(f"study {study.study_name!r} was not made by hpsearch (it stores no definition)")
    return stored_definition(raw), dict(study.user_attrs.get(STUDY_DATA, {}))
