"""Many workers, one study: exact stop at --trials, --jobs, SIGKILL recovery, refused workers.

The PostgreSQL tests run against the session's own server (``postgres`` in conftest.py) and
are skipped where PostgreSQL is not installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from hpsearch.analysis.report import build_report
from hpsearch.errors import StorageError
from hpsearch.store import close_storage, open_storage, stored_run
from hpsearch.store.schema import TRIAL_PARAMS_COUNT, TRIAL_RETRY_OF, TRIAL_WORKER
from tests.conftest import as_in_a_terminal, run_cli

ROOT = Path(__file__).resolve().parents[2]
# digits, 3 folds, no pruning (every trial completes), heartbeats each second (lost after 3 s)
WORKER_ARGS = ("--dataset", "digits", "--folds", "3", "--pruner", "none", "--heartbeat", "1", "--quiet")


def start_worker(storage: str, *args: str) -> subprocess.Popen[str]:
    """``hpsearch study`` in a process of its own, as on another machine."""
    return subprocess.Popen(
        [sys.executable, "-m", "hpsearch", "study", *WORKER_ARGS, "--storage", storage, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        # one torch thread each: the test machine has few cores, and other tests run beside
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        preexec_fn=as_in_a_terminal,
    )


@contextmanager
def opened(url: str, name: str = "digits") -> Iterator[optuna.Study]:
    """The study, read through a storage that is closed afterwards."""
    storage = open_storage(url)
    try:
        yield optuna.load_study(study_name=name, storage=storage)
    finally:
        close_storage(storage)


def trials(url: str, name: str = "digits") -> list[FrozenTrial]:
    with opened(url, name) as study:
        return study.get_trials()


def wait_for(
    url: str, ready: Callable[[list[FrozenTrial]], bool], worker: subprocess.Popen[str], timeout: float = 180
) -> list[FrozenTrial]:
    """Poll the study until ``ready(trials)``; fail if the worker ends first."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()[1]
        if path is None or Path(path).exists():  # opening a missing SQLite file would create it
            try:
                now = trials(url)
            except (KeyError, StorageError, sqlalchemy.exc.SQLAlchemyError):  # no study yet
                now = []
            if ready(now):
                return now
        time.sleep(0.2)
    raise AssertionError(f"the study did not get there in {timeout} s")


def complete(ts: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in ts if t.state == TrialState.COMPLETE]


def _params(t: FrozenTrial) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(t.params.items()))


@pytest.mark.slow
def test_two_workers_stop_at_exactly_n_complete_trials(postgres_url: str) -> None:
    # trials long enough that neither worker finishes the study before the other has started
    workers = [start_worker(postgres_url, "--trials", "6", "--epochs", "6") for _ in range(2)]
    try:
        errs = [worker.communicate(timeout=300)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.communicate()
    assert [w.returncode for w in workers] == [0, 0] and errs == ["", ""], errs
    ts = trials(postgres_url)
    assert [t.state for t in ts] == [TrialState.COMPLETE] * 6  # none over, none failed, none waiting
    assert len({t.user_attrs[TRIAL_WORKER] for t in ts}) == 2  # both did their share
    assert len({_params(t) for t in ts}) == 6  # no trial sampled twice


@pytest.mark.slow
def test_jobs_2_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert run_cli("study", *WORKER_ARGS, "--trials", "6", "--epochs", "3", "--jobs", "2", "--storage", url) == 0
    ts = trials(url)
    assert [t.state for t in ts] == [TrialState.COMPLETE] * 6
    workers = {t.user_attrs[TRIAL_WORKER] for t in ts}
    assert len(workers) == 2 and f":{os.getpid()}" in " ".join(workers)  # this process and one more
    assert len({_params(t) for t in ts}) == 6


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_failed_and_retried(postgres_url: str) -> None:
    worker = start_worker(postgres_url, "--trials", "4", "--epochs", "4")
    try:
        # a trial that has started training: its objective has stored the parameter count
        wait_for(
            postgres_url,
            lambda ts: any(t.state == TrialState.RUNNING and TRIAL_PARAMS_COUNT in t.user_attrs for t in ts),
            worker,
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        worker.kill()
        worker.communicate()
    (lost,) = [t for t in trials(postgres_url) if t.state == TrialState.RUNNING]

    assert run_cli("study", *WORKER_ARGS, "--trials", "4", "--epochs", "4", "--storage", postgres_url) == 0
    ts = trials(postgres_url)
    assert ts[lost.number].state == TrialState.FAIL
    (retry,) = [t for t in ts if t.user_attrs.get(TRIAL_RETRY_OF) == lost.number]
    assert retry.state == TrialState.COMPLETE and retry.params == lost.params
    assert retry.system_attrs["failed_trial"] == lost.number  # Optuna's own record of it
    assert len(complete(ts)) == 4
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # the report says which trial was lost and which one is its retry
    with opened(postgres_url, "digits") as study:
        reasons = build_report(study, *stored_run(study)).loss.set_index("trial")["reason"]
    assert reasons[lost.number] == f"its worker stopped (no heartbeat); retried as trial {retry.number}"
    assert reasons[retry.number] == f"retry of trial {lost.number}, whose worker stopped"


def test_a_worker_with_another_search_space_is_refused(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("study", *WORKER_ARGS, "--trials", "1", "--epochs", "1", "--storage", postgres_url) == 0
    before = trials(postgres_url)
    narrow = tmp_path / "narrow.toml"
    narrow.write_text(  # the default study on digits, but depth only up to 2
        "[data]\ndataset = 'digits'\n[cv]\nfolds = 3\n[train]\nepochs = 1\n"
        "[space]\ndepth = { low = 1, high = 2 }\nlr = { low = 1e-4, high = 1e-1, log = true }\n"
    )
    capsys.readouterr()
    code = run_cli(
        "study", "--config", narrow, "--trials", "2", "--quiet", "--storage", postgres_url, "--study-name", "digits"
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "space=" in lines[0] and "--study-name" in lines[0] and "hp-secret" not in lines[0]
    assert trials(postgres_url) == before


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_retried(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgres" else f"sqlite:///{tmp_path / 'study.db'}"
    assert run_cli("study", *WORKER_ARGS, "--trials", "1", "--epochs", "1", "--storage", url) == 0
    with opened(url) as study:
        lost = study.ask()  # running, and never a heartbeat: its worker died right after creating it
    assert run_cli("study", *WORKER_ARGS, "--trials", "3", "--epochs", "1", "--storage", url) == 0
    ts = trials(url)
    assert ts[lost.number].state == TrialState.FAIL
    (retry,) = [t for t in ts if t.user_attrs.get(TRIAL_RETRY_OF) == lost.number]
    assert retry.state == TrialState.COMPLETE and len(complete(ts)) == 3
