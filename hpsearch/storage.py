"""Storage URL -> Optuna storage, with one-line errors; the names of what hpsearch stores.

Study attributes: ``STUDY_DEFINITION`` (``Definition.to_dict()``) and ``STUDY_DATA`` (the data
summary with its fingerprint). Trial attributes: ``TRIAL_FOLDS`` (figures of each finished
fold), ``TRIAL_MEAN`` and ``TRIAL_STD`` (over those folds), ``TRIAL_PARAMS_COUNT``, ``TRIAL_MACS`` and
``TRIAL_REASON`` (why a trial was pruned or failed), ``TRIAL_WORKER`` (``host:pid`` of the
process that ran it) and ``TRIAL_RETRY_OF`` (on a retry: the number of the trial whose worker
died). ``STUDY_FINAL_TESTS``: the list of ``final-test`` results, oldest first, each a dict
that ``final_test.py`` writes.

Crash recovery: a storage opened with ``heartbeat=`` has each running trial write a heartbeat
every ``heartbeat`` seconds; a trial silent for ``GRACE_BEATS`` beats, or one that never beat
(``fail_unbeaten``), lost its worker (killed, or its machine lost): the next worker that looks
marks it failed and queues a copy with the same parameters (at most ``MAX_RETRY`` times), which
the next free worker runs. Only such trials are retried, never a trial that raised.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from hpsearch.config import Definition, stored_definition
from hpsearch.errors import ConfigError, HpsearchError, StorageError

STUDY_DEFINITION = "hpsearch.definition"
STUDY_DATA = "hpsearch.data"
STUDY_FINAL_TESTS = "hpsearch.final_tests"
TRIAL_FOLDS = "folds"
TRIAL_MEAN = "cv_mean"
TRIAL_STD = "cv_std"
TRIAL_PARAMS_COUNT = "n_params"
TRIAL_MACS = "macs"  # multiply-adds of one forward pass for one row
TRIAL_REASON = "reason"
TRIAL_WORKER = "worker"  # host:pid of the worker process that ran the trial
TRIAL_RETRY_OF = "retry_of"  # on a retried trial: the number of the trial whose worker stopped beating

MAX_RETRY = 2  # a trial that took down two workers is more likely the cause than the victim
GRACE_BEATS = 3  # missed heartbeats before a running trial counts as lost; one late beat is not a death
# Errors of a storage that stopped answering; Optuna wraps some SQLAlchemy errors in its own
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)

_SQLITE_MAGIC = b"SQLite format 3\x00"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_url(path_or_url: str) -> str:
    """A storage URL from either a URL or the path of an SQLite file."""
    return path_or_url if "://" in path_or_url else f"sqlite:///{path_or_url}"


def engine_url(url: str) -> str:
    """The URL SQLAlchemy gets: a bare ``postgresql://`` names psycopg 3, the driver hpsearch installs.

    (SQLAlchemy 2.0 reads a bare ``postgresql://`` as psycopg2, 2.1 as psycopg 3.)
    """
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


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
    if isinstance(cause, optuna.exceptions.StorageInternalError) and cause.__cause__ is not None:
        cause = cause.__cause__  # Optuna's text blames "invalid data"; the driver's says what happened
    text = str(cause).strip()
    first = text.splitlines()[0] if text else type(cause).__name__
    return StorageError(
        f"the storage {redact(url)} stopped answering: {first}; the trials finished before are kept there: "
        "run the same command again once it is back"
    )


def check_shared(url: str, jobs: int) -> None:
    """Refuse ``--jobs`` above 1 on in-memory SQLite, which other processes cannot open."""
    if jobs > 1 and url.startswith("sqlite:") and sqlite_path(url) is None:
        raise ConfigError(f"--jobs {jobs} needs a storage that several processes share, but got {redact(url)}")


def sqlite_path(url: str) -> Path | None:
    """The file an ``sqlite:///`` URL names, or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


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


def open_storage(url: str, *, must_exist: bool = False, heartbeat: int | None = None) -> optuna.storages.RDBStorage:
    """Open an Optuna storage, turning every way it can fail into one StorageError line.

    Args:
        url: an Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``).
        must_exist: for commands that only read: a missing SQLite file is an error, not a
            new empty database.
        heartbeat: for workers: seconds between the heartbeats of a running trial; a trial
            silent for ``GRACE_BEATS`` beats is failed and retried (see the module docstring).

    Raises:
        StorageError: the file is missing (when it must exist) or is not an SQLite database,
            the server cannot be reached, or the URL names no known database driver.
    """
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            if must_exist:
                raise StorageError(f"no such study file: {path}")
            if not path.parent.exists():
                raise StorageError(f"cannot create {path}: folder {path.parent} does not exist")
        elif not _is_sqlite(path):
            raise StorageError(f"{path} is not an SQLite database")
    # Several local workers share one SQLite file: a writer waits up to a minute for the lock
    # instead of failing at once (SQLite's default is 5 s), which 2-4 workers never come near.
    engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else {}
    beats: dict[str, Any] = {}
    if heartbeat is not None and (path is not None or not url.startswith("sqlite:")):  # not in memory: one thread
        beats = {
            "heartbeat_interval": heartbeat,
            "grace_period": GRACE_BEATS * heartbeat,
            "heartbeat_stale_trial_callback": _RetryStale(MAX_RETRY),
        }
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(engine_url(url), engine_kwargs=engine_kwargs, **beats)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as e:
            error: BaseException = e
            # workers that start together on an empty database race to create its tables
            if not isinstance(e, sqlalchemy.exc.IntegrityError) and "already exists" not in str(e):
                break
            time.sleep(1 + attempt if attempt < 2 else 0)
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise StorageError(f"cannot open storage {redact(url)}: {first}")


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
    with storage.engine.connect() as connection:
        lost = [row[0] for row in connection.execute(query, {"name": study.study_name})]
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial_id in lost:
        if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL) and retry is not None:
            retry(study, storage.get_trial(trial_id))


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close the storage's database connections (a server's connections would otherwise linger)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.remove_session()
        storage.engine.dispose()


class _RetryStale:
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


def load_study(url: str, study_name: str | None) -> optuna.Study:
    """Open an existing study for reading: the one named, or the only one in the storage.

    Raises:
        StorageError: the storage cannot be opened or holds no study.
        ConfigError: no study of that name (with the near miss), or several and no name given.
    """
    storage = open_storage(url, must_exist=True)
    try:
        names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise StorageError(f"cannot read {redact(url)}: {str(e).strip().splitlines()[0]}") from None
    if not names:
        raise StorageError(f"{redact(url)} holds no study")
    if study_name is None:
        if len(names) > 1:
            raise ConfigError(
                f"{redact(url)} holds {len(names)} studies ({', '.join(names)}): pick one with --study-name"
            )
        study_name = names[0]
    if study_name not in names:
        match = difflib.get_close_matches(study_name, names, n=1)
        hint = f"did you mean {match[0]!r}?" if match else f"studies: {', '.join(names)}"
        raise ConfigError(f"no study {study_name!r} in {redact(url)} ({hint})")
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


def fold_scores(
    trials: list[optuna.trial.FrozenTrial], metric: str
) -> tuple[dict[int, list[float]], dict[int, int | None]]:
    """Each trial's score of ``metric`` on every fold, and its parameter count, by trial number."""
    scores = {t.number: [fold.get(metric, math.nan) for fold in t.user_attrs.get(TRIAL_FOLDS, [])] for t in trials}
    return scores, {t.number: t.user_attrs.get(TRIAL_PARAMS_COUNT) for t in trials}
