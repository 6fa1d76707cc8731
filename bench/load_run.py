"""Many ``hpsearch study`` processes on one PostgreSQL study, watched, with faults done to them.

``run_load`` starts the workers as users start them on many machines (one process each, one
command), polls ``pg_stat_activity`` for the connections they hold, and, if asked, SIGKILLs
workers that are running a trial, restarts the server, or interrupts them all (SIGINT, as Ctrl-C)
and starts them again. The load bench (bench/load.py) and tests/search/test_load.py run it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import TrialState

from bench.postgres import Postgres
from hpsearch.store import engine_url
from hpsearch.store.schema import TRIAL_REASON, TRIAL_RETRY_OF

ROOT = Path(__file__).resolve().parents[1]
ROLE, ROLE_PASSWORD = "worker", "worker-secret"  # no superuser: the slots a server reserves are not the workers'
STUDY = "load"
# cheap trials (digits, 3 folds, 1 epoch, at most 2 layers of at most 64 units), so that the
# storage is what is measured
CHEAP: tuple[str, ...] = ("--dataset", "digits", "--folds", "3", "--epochs", "1", "--pruner", "none", "--quiet")
CHEAP += ("--set", "space.width.high=64", "--set", "space.depth.high=2")
FINISHED = "('COMPLETE', 'PRUNED')"


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What is done to the workers while they run."""

    kills: int = 0  # workers SIGKILLed while they run a trial, each at a random moment
    restart: float = 0.0  # seconds the server is down, from a random moment; 0: no restart
    interrupt: bool = False  # SIGINT to every worker once half the trials finished, then all start again


@dataclass(frozen=True, kw_only=True)
class LoadRun:
    """What one run of ``run_load`` saw."""

    workers: int
    trials: int  # --trials
    wall: float  # seconds from the first worker's start to the last one's end
    trial_seconds: float  # from the first trial's start to the last one's end, as the study stored them
    states: dict[str, int]  # the study's trials by state at the end
    codes: list[int]  # exit code of each worker (-9: SIGKILLed); after an interrupt, of the ones started again
    errors: list[str]  # the first line of each worker that ended otherwise than expected
    warnings: int  # warning lines of all workers (after an interrupt: of the ones started again)
    waited: int  # workers that waited for a free connection (the server at max_connections)
    peak_connections: int  # the workers' connections at the busiest poll of pg_stat_activity
    calls: int  # storage calls of the workers' main threads (those not killed)
    storage_seconds: float  # spent in them
    lock_seconds: float  # waiting for the study's lock
    worker_seconds: float  # the same workers' wall time, summed
    killed: int = 0
    lost: int = 0  # trials failed because their worker stopped
    retried: int = 0  # of those, retried by another worker
    interrupted_codes: list[int] = field(default_factory=list)  # after SIGINT, before the restart
    kept: bool = True  # every trial finished before the SIGINT is there after it, with its value
    command: str = ""

    @property
    def exact(self) -> bool:
        """The study holds exactly --trials finished trials, and none running."""
        finished = self.states.get("COMPLETE", 0) + self.states.get("PRUNED", 0)
        return finished == self.trials and self.states.get("RUNNING", 0) == 0


def prepare(server: Postgres, database: str) -> str:
    """A new database on ``server``, owned by the workers' role (made once); the URL the workers use."""
    if not server.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'").strip():
        server.create_role(ROLE, ROLE_PASSWORD)
    server.createdb(database, owner=ROLE)
    return server.url(database, password=ROLE_PASSWORD, user=ROLE)


def run_load(
    server: Postgres,
    database: str,
    *,
    workers: int,
    trials: int,
    faults: Faults = Faults(),
    heartbeat: int = 10,
    patience: float = 120,
    seed: int = 0,
) -> LoadRun:
    """Run ``workers`` processes of ``hpsearch study --trials trials`` (cheap trials) on a new database.

    Args:
        server: a running server; ``database`` must not exist on it yet.
        faults: what to do to the workers while they run.
        heartbeat, patience: the workers' ``--heartbeat`` and ``--storage-patience``.
        seed: picks the moments of the faults.
    """
    url = prepare(server, database)
    args = ["study", *CHEAP, "--trials", str(trials), "--heartbeat", str(heartbeat)]
    args += ["--storage-patience", str(patience), "--storage", url, "--study-name", STUDY]
    watch = sqlalchemy.create_engine(engine_url(server.url(database)), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="hpsearch-load-") as folder:
        start = time.perf_counter()
        wave = _Wave(Path(folder), "a", args, workers)
        seen = _watch(wave, server, watch, trials, faults, rng)
        interrupted: list[int] = []
        if faults.interrupt:
            interrupted = wave.wait()
            wave = _Wave(Path(folder), "b", args, workers)  # the same command, again
            seen.peak = max(seen.peak, _watch(wave, server, watch, trials, Faults(), rng).peak)
        codes = wave.wait()
        wall = time.perf_counter() - start
        clocks = wave.clocks()
        errors = [wave.first_line(i) for i, code in enumerate(codes) if code != 0 and i not in seen.killed]
        errors += [f"exit code {code} on SIGINT" for code in interrupted if code != 130]
        warnings, waited = wave.warnings()
    lost, retried, seconds, states, after = _outcome(server.url(database))
    watch.dispose()
    return LoadRun(
        workers=workers,
        trials=trials,
        wall=wall,
        trial_seconds=seconds,
        states=states,
        codes=codes,
        errors=errors,
        warnings=warnings,
        waited=waited,
        peak_connections=seen.peak,
        calls=sum(int(c["calls"]) for c in clocks),
        storage_seconds=sum(c["seconds"] for c in clocks),
        lock_seconds=sum(c["lock_seconds"] for c in clocks),
        worker_seconds=sum(c["wall"] for c in clocks),
        killed=len(seen.killed),
        lost=lost,
        retried=retried,
        interrupted_codes=interrupted,
        kept=seen.before.items() <= after.items(),
        command="hpsearch " + " ".join(args).replace(ROLE_PASSWORD, "***"),
    )


class _Wave:
    """``n`` worker processes started together, each with its stderr and clock in ``folder``."""

    def __init__(self, folder: Path, name: str, args: list[str], n: int) -> None:
        self.files = [(folder / f"{name}{i}.err", folder / f"{name}{i}.json") for i in range(n)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # one torch thread each
        self.processes = []
        for err, clock in self.files:
            with err.open("w") as stderr:
                command = [sys.executable, "-m", "bench.load_worker", str(clock), *args]
                self.processes.append(
                    subprocess.Popen(
                        command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, env=env, preexec_fn=_terminal
                    )
                )

    def started(self) -> bool:
        """Whether every worker has imported hpsearch (before that, SIGINT is Python's KeyboardInterrupt)."""
        return all(clock.with_suffix(".started").exists() for _, clock in self.files)

    def alive(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def wait(self) -> list[int]:
        return [p.wait() for p in self.processes]

    def clocks(self) -> list[dict[str, float]]:
        return [json.loads(clock.read_text()) for _, clock in self.files if clock.exists()]

    def first_line(self, i: int) -> str:
        lines = [line for line in self.files[i][0].read_text().splitlines() if not line.startswith("warning: ")]
        return lines[0] if lines else f"exit code {self.processes[i].returncode}"

    def warnings(self) -> tuple[int, int]:
        """Warning lines, and the workers that waited for a free connection."""
        texts = [err.read_text() for err, _ in self.files]
        return sum(t.count("warning: ") for t in texts), sum("no free connection" in t for t in texts)


def _terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a Ctrl-C as in a terminal, even under nohup


@dataclass
class _Seen:
    peak: int = 0  # the workers' connections at the busiest poll
    killed: list[int] = field(default_factory=list)  # workers SIGKILLed
    before: dict[int, float | None] = field(default_factory=dict)  # finished trials before the SIGINT


def _watch(
    wave: _Wave, server: Postgres, watch: sqlalchemy.Engine, trials: int, faults: Faults, rng: random.Random
) -> _Seen:
    """Poll until the wave ends (or is interrupted), doing the faults at their moments."""
    kill_at = sorted(rng.randint(1, max(1, trials * 2 // 3)) for _ in range(faults.kills))
    restart_at = rng.randint(1, max(1, trials // 2)) if faults.restart else None
    seen = _Seen()
    while wave.alive():
        look = _look(watch)
        if look is not None:
            connections, finished, running = look
            seen.peak = max(seen.peak, connections)
            victim = _running_worker(wave, running, seen.killed, rng) if kill_at and finished >= kill_at[0] else None
            if victim is not None:
                kill_at.pop(0)
                wave.processes[victim].send_signal(signal.SIGKILL)
                seen.killed.append(victim)
            if restart_at is not None and finished >= restart_at:
                server.stop()
                time.sleep(faults.restart)
                server.start()
                restart_at = None
            if faults.interrupt and finished >= trials // 2 and wave.started():
                seen.before = _finished(watch)
                for process in wave.processes:
                    process.send_signal(signal.SIGINT)
                break
        time.sleep(0.05)
    return seen


def _look(watch: sqlalchemy.Engine) -> tuple[int, int, list[str]] | None:
    """The workers' connections, finished trials and the workers of running trials; None: the server is down."""
    try:
        with watch.connect() as c:
            connections = c.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = :r"
                ),
                {"r": ROLE},
            ).scalar_one()
            if c.execute(sqlalchemy.text("SELECT to_regclass('trial_user_attributes')")).scalar() is None:
                return connections, 0, []
            finished = c.execute(sqlalchemy.text(f"SELECT count(*) FROM trials WHERE state IN {FINISHED}")).scalar_one()
            running = c.execute(
                sqlalchemy.text(
                    "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                    "WHERE t.state = 'RUNNING' AND a.key = 'worker'"
                )
            ).scalars()
            return connections, finished, [json.loads(v) for v in running]
    except sqlalchemy.exc.OperationalError:
        return None


def _running_worker(wave: _Wave, running: list[str], killed: list[int], rng: random.Random) -> int | None:
    """One of the wave's workers that run a trial (its objective stored host:pid), not killed yet, at random."""
    pids = {int(worker.rsplit(":", 1)[1]) for worker in running}
    found = [i for i, p in enumerate(wave.processes) if p.pid in pids and i not in killed and p.poll() is None]
    return rng.choice(found) if found else None


def _finished(watch: sqlalchemy.Engine) -> dict[int, float | None]:
    query = sqlalchemy.text(
        "SELECT t.number, v.value FROM trials t LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
        f"WHERE t.state IN {FINISHED}"
    )
    with watch.connect() as c:
        return {number: value for number, value in c.execute(query).all()}


def _outcome(url: str) -> tuple[int, int, float, dict[str, int], dict[int, float | None]]:
    """Trials lost with their worker, those retried, seconds from the first start to the last end, the
    states, and the finished trials' values."""
    storage = optuna.storages.RDBStorage(engine_url(url))
    try:
        ts = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()
    retry_of = {t.user_attrs[TRIAL_RETRY_OF] for t in ts if TRIAL_RETRY_OF in t.user_attrs}
    # failed because their worker stopped beating: not by Ctrl-C, which says so in the reason
    lost = [t for t in ts if t.state == TrialState.FAIL and TRIAL_REASON not in t.user_attrs]
    done = [t for t in ts if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    starts = [t.datetime_start for t in done if t.datetime_start is not None]
    ends = [t.datetime_complete for t in done if t.datetime_complete is not None]
    seconds = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    states: dict[str, int] = {}
    for t in ts:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return len(lost), len({t.number for t in lost} & retry_of), seconds, states, {t.number: t.value for t in done}
