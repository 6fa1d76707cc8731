"""A study bends instead of breaking: a database restart, a trial taken from a live worker, two first workers.

All on a real PostgreSQL server of the tests' own (tests/conftest.py), with workers in processes
of their own, as on other machines.
"""

from __future__ import annotations

import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from bench.postgres import Postgres
from hpsearch.config import Definition
from hpsearch.store import close_storage, open_storage, stored_run
from tests.search.test_workers import complete, start_worker, trials, wait_for


def _finish(workers: list[subprocess.Popen[str]], timeout: float = 300) -> list[tuple[int, str]]:
    """Wait for each worker; its exit code and stderr."""
    results = []
    for worker in workers:
        try:
            _, err = worker.communicate(timeout=timeout)
        finally:
            worker.kill()
            worker.communicate()
        results.append((worker.returncode, err))
    return results


@pytest.mark.slow
def test_a_postgres_restart_of_20_s_costs_no_worker_and_no_trial(postgres: Postgres, postgres_url: str) -> None:
    target = 10
    workers = [start_worker(postgres_url, "--trials", str(target), "--epochs", "3") for _ in range(2)]
    try:
        before = wait_for(postgres_url, lambda ts: len(complete(ts)) >= 2, workers[0])
        postgres.stop()
        time.sleep(20)
        postgres.start()
    finally:
        results = _finish(workers)
    assert [code for code, _ in results] == [0, 0], results
    for _, err in results:  # warnings only: the wait, and perhaps a trial taken over after it
        assert all(line.startswith("warning: ") for line in err.splitlines()), err
    after = trials(postgres_url)
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == target  # exactly --trials, however the restart fell
    assert not [t for t in after if t.state == TrialState.RUNNING]
    assert {t.number: t.value for t in complete(before)}.items() <= {t.number: t.value for t in after}.items()


@pytest.mark.slow
def test_a_worker_whose_trial_was_taken_away_goes_on(postgres_url: str) -> None:
    target = 4
    worker = start_worker(postgres_url, "--trials", str(target), "--epochs", "30")
    try:
        running = wait_for(postgres_url, lambda ts: any(t.state == TrialState.RUNNING for t in ts), worker)
        victim = next(t for t in running if t.state == TrialState.RUNNING)
        # what another worker does to a trial whose heartbeats it found late
        storage = open_storage(postgres_url)
        try:
            storage.set_trial_state_values(victim._trial_id, state=TrialState.FAIL)
        finally:
            close_storage(storage)
        ((code, err),) = _finish([worker])
    finally:
        worker.kill()
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: trial {victim.number} was failed by another worker")
    after = trials(postgres_url)
    assert len(complete(after)) == target and after[victim.number].state == TrialState.FAIL


@pytest.mark.slow
def test_two_first_workers_with_different_definitions_one_wins(postgres_url: str) -> None:
    workers = [start_worker(postgres_url, "--trials", "2", "--epochs", "1", "--seed", str(seed)) for seed in (1, 2)]
    results = _finish(workers)
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert refused.startswith("error: study 'digits'") and "was created with" in refused
    assert len(refused.strip().splitlines()) == 1
    storage = open_storage(postgres_url)
    try:
        study = optuna.load_study(study_name="digits", storage=storage)
        won = stored_run(study)[0].seed
        assert won in (1, 2) and len(study.trials) == 2 and Definition().seed == 0
    finally:
        close_storage(storage)
