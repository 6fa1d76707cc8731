"""Where studies live: storage URLs, opening storages and studies, the stored schema, locks, recovery."""

from hpsearch.store.lock import StudyLock, open_lock, study_locked
from hpsearch.store.open import (
    close_storage,
    first_line,
    load_study,
    open_storage,
    storage_lost,
    stored_run,
    watch_file,
)
from hpsearch.store.recovery import STORAGE_ERRORS, fail_unbeaten, first_beat, quiet_heartbeats
from hpsearch.store.urls import check_shared, engine_url, redact, sqlite_path, storage_url

__all__ = [
    "STORAGE_ERRORS",
    "StudyLock",
    "check_shared",
    "close_storage",
    "engine_url",
    "fail_unbeaten",
    "first_beat",
    "first_line",
    "load_study",
    "open_lock",
    "open_storage",
    "quiet_heartbeats",
    "redact",
    "sqlite_path",
    "storage_lost",
    "storage_url",
    "stored_run",
    "study_locked",
    "watch_file",
]
