"""Storage URL -> Optuna storage, with one-line errors; the names of what hpsearch stores.

Study attributes: ``STUDY_DEFINITION`` (``Definition.to_dict()``) and ``STUDY_DATA`` (the data
summary with its fingerprint). Trial attributes: ``TRIAL_FOLDS`` (figures of each finished
fold), ``TRIAL_MEAN`` and ``TRIAL_STD`` (over those folds), ``TRIAL_PARAMS_COUNT``, ``TRIAL_MACS`` and
``TRIAL_REASON`` (why a trial was pruned or failed). ``STUDY_FINAL_TESTS``: the list of
``final-test`` results, oldest first, each a dict that ``final_test.py`` writes.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from hpsearch.config import Definition, stored_definition
from hpsearch.errors import ConfigError, StorageError

STUDY_DEFINITION = "hpsearch.definition"
STUDY_DATA = "hpsearch.data"
STUDY_FINAL_TESTS = "hpsearch.final_tests"
TRIAL_FOLDS = "folds"
TRIAL_MEAN = "cv_mean"
TRIAL_STD = "cv_std"
TRIAL_PARAMS_COUNT = "n_params"
TRIAL_MACS = "macs"  # multiply-adds of one forward pass for one row
TRIAL_REASON = "reason"

_SQLITE_MAGIC = b"SQLite format 3\x00"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def storage_url(path_or_url: str) -> str:
    """A storage URL from either a URL or the path of an SQLite file."""
    return path_or_url if "://" in path_or_url else f"sqlite:///{path_or_url}"


def sqlite_path(url: str) -> Path | None:
    """The file an ``sqlite:///`` URL names, or None for other storages and in-memory SQLite."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def _is_sqlite(path: Path) -> bool:
    if path.is_dir():
        return False
    with path.open("rb") as f:
        head = f.read(16)
    return head in (b"", _SQLITE_MAGIC)  # an empty file is a fresh database


def open_storage(url: str, *, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """Open an Optuna storage, turning every way it can fail into one StorageError line.

    Args:
        url: an Optuna storage URL (``sqlite:///study.db``, ``postgresql://...``).
        must_exist: for commands that only read: a missing SQLite file is an error, not a
            new empty database.

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
    engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"cannot open storage {redact(url)}: {first}") from None


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
