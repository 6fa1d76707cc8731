"""The fault table: what a user sees when a storage fails or a worker does not fit its study.

Each row is a fault or a bad input, the exit code, and a piece of the one line on stderr. Every
case starts from a study that already holds finished trials and checks that they survive: in
the store once it is back, and in a study that the same command then continues.

Faults, exit codes and the lines users see (URL passwords print as ***):

- SQLite file moved away mid-study, exit 2: "error: the study file DIR/study.db was moved or
  removed while the study ran; the trials finished before are in the file that was there: put
  it back and run the same command again"
- PostgreSQL server stopped mid-study for longer than ``--storage-patience`` (default 120 s;
  3 s here), exit 2, after "warning: the storage stopped answering; waiting up to 3 s for it":
  "error: the storage postgresql://hp:***@HOST/DB stopped answering: (psycopg.OperationalError)
  ... Connection refused; the trials finished before are kept there: run the same command again
  once it is back". (Back within the patience, it costs nothing: tests/search/test_restart.py.)
- Ctrl-C on ``--jobs 2``, exit 130: "error: interrupted: finished trials are kept in study
  'digits' in sqlite:///...; run the same command again to continue"
- wrong password, exit 2: "error: cannot open storage postgresql://hp:***@HOST/DB:
  (psycopg.OperationalError) ... password authentication failed for user "hp""
- no such database, exit 2: "error: cannot open storage ...: ... database "nope" does not exist"
- server not running, exit 2: "error: cannot open storage ...: ... Connection refused"
- another search space, exit 2: "error: study 'digits' in ... was created with space=[...];
  this run asks for space=[...]: run it with the same options, or start a new study with
  --study-name"
- other data (a changed CSV), exit 2: "error: study 't' was run on other data (N + M rows,
  fingerprint ...); these data have ..."
- ``--jobs 2`` on in-memory SQLite, exit 2: "error: --jobs 2 needs a storage that several
  processes share, but got sqlite:///:memory:"

A worker killed with SIGKILL, and one that dies before its trial's first heartbeat, are in
tests/test_workers.py: no line to see there; their trials are failed and retried.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import FrozenTrial, TrialState

from bench.postgres import Postgres
from hpsearch.store.schema import TRIAL_WORKER
from tests.conftest import run_cli
from tests.search.test_workers import WORKER_ARGS, complete, start_worker, trials, wait_for


@dataclass
class Place:
    """Where a case's study lives."""

    url: str
    tmp: Path
    server: Postgres | None


def _finished(ts: list[FrozenTrial]) -> dict[int, float | None]:
    return {t.number: t.value for t in complete(ts)}


def _place(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Place:
    if kind == "postgres":
        return Place(request.getfixturevalue("postgres_url"), tmp_path, request.getfixturevalue("postgres"))
    return Place(f"sqlite:///{tmp_path / 'study.db'}", tmp_path, None)


# --- faults in the middle of a study: the worker runs in a process of its own ----------------


def _move_away(place: Place, worker: int) -> Callable[[], None]:
    db = Path(place.url.removeprefix("sqlite:///"))
    moved = db.rename(db.with_suffix(".moved"))

    def put_back() -> None:
        moved.rename(db)

    return put_back


def _stop_server(place: Place, worker: int) -> Callable[[], None]:
    assert place.server is not None
    place.server.stop()
    return place.server.start


def _ctrl_c(place: Place, worker: int) -> Callable[[], None]:
    os.kill(worker, signal.SIGINT)  # the parent only; it interrupts its worker processes itself
    return lambda: None


MID_RUN: dict[str, tuple[str, tuple[str, ...], Callable[[Place, int], Callable[[], None]], int, str]] = {
    # name: (storage, extra options, the fault (returns how to undo it), exit code, part of the line)
    "SQLite file moved away": ("sqlite", (), _move_away, 2, "was moved or removed while the study ran"),
    "PostgreSQL server stopped": ("postgres", ("--storage-patience", "3"), _stop_server, 2, "stopped answering"),
    "Ctrl-C on --jobs 2": ("sqlite", ("--jobs", "2"), _ctrl_c, 130, "interrupted: finished trials are kept"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MID_RUN)
def test_fault_in_the_middle_of_a_study(case: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kind, extra, fault, code, message = MID_RUN[case]
    place = _place(kind, tmp_path, request)
    worker = start_worker(place.url, "--trials", "40", "--epochs", "2", *extra)
    try:
        workers = 2 if "--jobs" in extra else 1  # with --jobs, wait until the second process works too
        ready = wait_for(
            place.url,
            lambda ts: len(complete(ts)) >= 2 and len({t.user_attrs[TRIAL_WORKER] for t in complete(ts)}) >= workers,
            worker,
        )
        restore = fault(place, worker.pid)
        _, err = worker.communicate(timeout=120)
    finally:
        worker.kill()
        worker.communicate()
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert worker.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "hp-secret" not in lines[0]
    restore()  # the storage is back

    after = trials(place.url)
    assert _finished(ready).items() <= _finished(after).items()  # every finished trial survived
    target = len(complete(after)) + 2
    assert run_cli("study", *WORKER_ARGS, "--epochs", "2", "--trials", str(target), "--storage", place.url) == 0
    resumed = trials(place.url)
    assert len(complete(resumed)) == target and _finished(after).items() <= _finished(resumed).items()
    # a trial left running by the fault was failed by its missing heartbeats and retried
    assert not [t for t in resumed if t.state == TrialState.RUNNING]


# --- bad input at the start: the refused run changes nothing ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _table(place: Place) -> list[str]:
    frame = pd.DataFrame({"a": range(40), "b": [i % 7 for i in range(40)], "label": ["x", "y"] * 20})
    frame.to_csv(place.tmp / "t.csv", index=False)
    return ["--data", str(place.tmp / "t.csv"), "--target", "label"]


def _narrow_space(place: Place) -> list[str]:
    config = place.tmp / "narrow.toml"
    config.write_text(
        "[data]\ndataset = 'digits'\n[cv]\nfolds = 3\n[train]\nepochs = 1\n"
        "[space]\ndepth = { low = 1, high = 2 }\nlr = { low = 1e-4, high = 1e-1, log = true }\n"
    )
    return ["--config", str(config), "--study-name", "digits"]


def _changed_table(place: Place) -> list[str]:
    frame = pd.read_csv(place.tmp / "t.csv")
    frame.loc[0, "a"] = 1000
    frame.to_csv(place.tmp / "t.csv", index=False)
    return ["--data", str(place.tmp / "t.csv"), "--target", "label"]


def _other_url(place: Place, **parts: str) -> list[str]:
    assert place.server is not None
    url = place.url.replace("hp-secret", parts.get("password", "hp-secret"))
    url = url.rsplit("/", 1)[0] + "/" + parts["database"] if "database" in parts else url
    url = url.replace(f":{place.server.port}/", f":{_free_port()}/") if "port" in parts else url
    return ["--storage", url]


AT_START: dict[str, tuple[str, Callable[[Place], list[str]], int, str]] = {
    # name: (storage, options of the refused run, exit code, part of the line)
    "wrong password": ("postgres", lambda p: _other_url(p, password="wrong"), 2, "password authentication failed"),
    "no such database": ("postgres", lambda p: _other_url(p, database="nope"), 2, 'database "nope" does not exist'),
    "server not running": ("postgres", lambda p: _other_url(p, port="free"), 2, "cannot open storage"),
    "another search space": ("postgres", _narrow_space, 2, "was created with space="),
    "other data": ("sqlite", _changed_table, 2, "was run on other data"),
    "--jobs 2 on in-memory SQLite": (
        "sqlite",
        lambda p: ["--jobs", "2", "--storage", "sqlite:///:memory:"],
        2,
        "needs a storage that several processes share",
    ),
}


@pytest.mark.parametrize("case", AT_START)
def test_bad_input_at_the_start(
    case: str, tmp_path: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, refused, code, message = AT_START[case]
    place = _place(kind, tmp_path, request)
    data = _table(place) if case == "other data" else ["--dataset", "digits"]
    first = ["--folds", "3", "--epochs", "1", "--pruner", "none", "--quiet", "--storage", place.url]
    assert run_cli("study", *data, *first, "--trials", "2") == 0
    name = "t" if case == "other data" else "digits"  # a table study is named after its file, t.csv
    before = trials(place.url, name)
    capsys.readouterr()

    assert run_cli("study", *data, *first, "--trials", "3", *refused(place)) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "hp-secret" not in lines[0] and ":wrong@" not in lines[0]
    assert trials(place.url, name) == before  # the refused run changed nothing
