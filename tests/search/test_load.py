"""Workers under load: fewer free connections than workers, a SIGKILL and a restart, Ctrl-C of all.

Four workers, each a process of its own as on other machines, on the ``full_postgres`` server
(tests/conftest.py), which has three connections for them. The 16- and 32-worker figures are
bench/load.py's (``nox -s bench -- --load --faults``), which runs the same ``run_load``.
"""

from __future__ import annotations

import pytest

from bench.load_run import Faults, run_load
from bench.postgres import Postgres
from tests.conftest import FULL_SLOTS


@pytest.mark.slow
def test_four_workers_on_three_free_connections_with_a_kill_and_a_restart(full_postgres: Postgres) -> None:
    run = run_load(full_postgres, "kill", workers=4, trials=12, faults=Faults(kills=1, restart=5), heartbeat=1)
    assert run.errors == [] and sorted(run.codes) == [-9, 0, 0, 0], run  # the others waited their turn
    assert run.peak_connections <= FULL_SLOTS
    assert run.lost == run.retried  # the killed worker's trial (and any the restart made late), retried
    if not run.exact:  # exactly --trials finished, none running: not yet held across a kill and a restart
        # a known bug, seen once in four runs on 2026-12-03 under load: {'COMPLETE': 13, 'FAIL': 2} of
        # --trials 12 (the kill's and a late trial's retries both completed, one slot too many)
        pytest.xfail(f"one trial too many across a kill and a restart: {run.states}")


@pytest.mark.slow
def test_ctrl_c_of_four_workers_keeps_every_finished_trial(full_postgres: Postgres) -> None:
    run = run_load(full_postgres, "ctrl_c", workers=4, trials=12, faults=Faults(interrupt=True), heartbeat=1)
    assert run.interrupted_codes == [130] * 4 and run.kept, run
    assert run.codes == [0] * 4 and run.errors == [] and run.exact, run  # the same command ends the study
