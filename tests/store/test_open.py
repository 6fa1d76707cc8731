"""Opening a server storage: one connection per worker, a wait for a free one, an older schema refused."""

from __future__ import annotations

import threading
import time
from typing import Any

import optuna
import pytest
import sqlalchemy

from bench.load_run import prepare
from bench.postgres import Postgres
from hpsearch.errors import StorageError
from hpsearch.store import close_storage, engine_url, open_storage, study_locked
from tests.conftest import FULL_SLOTS


def _connections(server: Postgres, database: str) -> int:
    return int(server.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"))


def test_a_worker_holds_one_connection_the_study_lock_included(postgres: Postgres, postgres_url: str) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    storage = open_storage(postgres_url, heartbeat=1, patience=5)
    seen: dict[str, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        time.sleep(1.5)  # the heartbeat thread beats meanwhile, on the same connection
        with storage.engine.connect() as c:
            seen["mine"] = c.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()
            locks = c.execute(sqlalchemy.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory'"))
            seen["locks"] = list(locks.scalars())
        seen["connections"] = _connections(postgres, database)
        return 0.0

    try:
        study = optuna.create_study(storage=storage, study_name="one")
        with study_locked(postgres_url, "one", storage):
            study.optimize(objective, n_trials=1)
    finally:
        close_storage(storage)
    assert seen["locks"] == [seen["mine"]]  # the study's lock is held on the worker's connection
    assert seen["connections"] == 1


def test_a_worker_waits_for_a_free_connection_within_its_patience(full_postgres: Postgres) -> None:
    url = prepare(full_postgres, "patience")
    engine = sqlalchemy.create_engine(engine_url(url), poolclass=sqlalchemy.pool.NullPool)
    held = [engine.connect() for _ in range(FULL_SLOTS)]  # other workers hold every slot
    try:
        with pytest.raises(StorageError, match=r"^cannot open storage .*remaining connection slots are reserved"):
            open_storage(url)  # no patience: the line at once

        def leave() -> None:
            for c in held:
                c.close()

        threading.Timer(1.5, leave).start()  # then they leave
        start = time.monotonic()
        close_storage(open_storage(url, patience=30))
        assert time.monotonic() - start >= 1.0
    finally:
        engine.dispose()


def test_tables_of_another_optuna_schema_are_refused(postgres_url: str) -> None:
    close_storage(open_storage(postgres_url))
    engine = sqlalchemy.create_engine(engine_url(postgres_url))
    with engine.begin() as c:
        c.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'v3.0.0.a'"))
    engine.dispose()
    with pytest.raises(StorageError, match=r"holds Optuna tables of schema v3\.0\.0\.a, this Optuna .* needs v"):
        open_storage(postgres_url)
