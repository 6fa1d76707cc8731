"""Many workers on one PostgreSQL study: what the storage costs them, and faults under load.

``nox -s bench -- --load [OPTIONS]`` (``python -m bench.load [OPTIONS]``) starts a PostgreSQL
server of its own (``max_connections`` 100, PostgreSQL's default) and, for each count of
``--workers`` (1 4 16 32), runs that many ``hpsearch study`` processes, as users start them on
many machines, on a new study of ``--trials`` cheap trials (digits, 3 folds, 1 epoch, narrow
widths: the storage is what is measured). Per count it reports trials per second (first trial
start to last trial end), the share of the workers' time spent in storage calls (timed in
``PatientStorage``) and waiting for the study's lock, the connections they held at the busiest
poll of ``pg_stat_activity``, the workers that waited for a free connection and those that
ended in an error, and whether the study holds exactly ``--trials`` finished trials with none
running.

``--faults`` then runs ``--fault-workers`` (16) workers under each fault: SIGKILL of 4 of them
while they run a trial, at random moments (their trials must be retried); a 20 s server restart
(no worker lost); SIGINT to all (every finished trial kept), then the same command again (the
study ends at exactly ``--trials``). ``--proxy`` compares the storage alone, direct and through
Optuna's gRPC proxy (bench/load_proxy.py). It also times what a connection pool saves: a call on
a pooled connection against one on a new connection (``NullPool``). Writes bench/load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy
from rich.console import Console
from rich.table import Table
from sqlalchemy.pool import NullPool

from bench.load_proxy import compare
from bench.load_run import Faults, LoadRun, prepare, run_load
from bench.postgres import Postgres, throwaway
from hpsearch.store import engine_url
from hpsearch.store.open import SERVER_POOL

RESULTS = Path(__file__).with_name("load.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 4, 16, 32], help="worker counts (1 4 16 32)")
    parser.add_argument("--trials", type=int, default=128, help="--trials of each study (128)")
    parser.add_argument("--heartbeat", type=int, default=10, help="the workers' --heartbeat (10, the default)")
    parser.add_argument("--max-connections", type=int, default=100, help="the server's (100, its default)")
    parser.add_argument("--proxy", action="store_true", help="then the storage alone, direct and via gRPC proxy")
    parser.add_argument("--faults", action="store_true", help="then the faults under --fault-workers workers")
    parser.add_argument("--fault-workers", type=int, default=16, help="workers under the faults (16)")
    parser.add_argument("--fault-trials", type=int, default=96, help="--trials of each fault's study (96)")
    parser.add_argument("--kills", type=int, default=4, help="workers SIGKILLed (4)")
    parser.add_argument("--restart", type=float, default=20.0, help="seconds the server is down (20)")
    parser.add_argument("--fault-heartbeat", type=int, default=2, help="--heartbeat under the faults (2)")
    parser.add_argument("--seed", type=int, default=0, help="picks the moments of the faults (0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(width=140)
    console.print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    results: dict[str, Any] = {"settings": vars(args), "cores": os.cpu_count(), "load_average_start": os.getloadavg()}
    with throwaway(f"max_connections={args.max_connections}") as server:
        results["connection"] = connect_cost(server)
        console.print(_connection_line(results["connection"]))
        load = []
        for n in args.workers:
            console.print(f"{n} workers, {args.trials} trials ...")
            load.append(run_load(server, f"load{n}", workers=n, trials=args.trials, heartbeat=args.heartbeat))
        results["load"] = [_row(run) for run in load]
        if load:
            console.print(_load_table(load, args.max_connections))
        if args.proxy:
            console.print(f"the storage alone, direct and through Optuna's gRPC proxy, {args.trials} trials ...")
            results["proxy"] = compare(server, args.workers, args.trials)
            console.print(_proxy_table(results["proxy"]))
        if args.faults:
            results["faults"] = _faults(server, args, console)
    results["load_average_end"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written: {RESULTS}")
    return 0


def _faults(server: Postgres, args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    cases = {
        f"SIGKILL of {args.kills} worker{'s' * (args.kills != 1)}": Faults(kills=args.kills),
        f"{args.restart:.0f} s server restart": Faults(restart=args.restart),
        "Ctrl-C of all, then again": Faults(interrupt=True),
    }
    runs: dict[str, LoadRun] = {}
    for i, (name, faults) in enumerate(cases.items()):
        console.print(f"{args.fault_workers} workers, {args.fault_trials} trials: {name} ...")
        runs[name] = run_load(
            server,
            f"fault{i}",
            workers=args.fault_workers,
            trials=args.fault_trials,
            faults=faults,
            heartbeat=args.fault_heartbeat,
            seed=args.seed,
        )
    table = Table(title=f"{args.fault_workers} workers, {args.fault_trials} trials, --heartbeat {args.fault_heartbeat}")
    for column in ("fault", "exit codes", "lost / retried", "errors", "exact --trials", "finished kept", "wall s"):
        table.add_column(column)
    for name, run in runs.items():
        codes = ", ".join(f"{c} x{run.codes.count(c)}" for c in sorted(set(run.codes)))
        if run.interrupted_codes:
            first = ", ".join(f"{c} x{run.interrupted_codes.count(c)}" for c in sorted(set(run.interrupted_codes)))
            codes = f"{first}; again: {codes}"
        table.add_row(
            name,
            codes,
            f"{run.lost} / {run.retried}",
            str(len(run.errors)),
            str(run.exact),
            str(run.kept),
            f"{run.wall:.0f}",
        )
    console.print(table)
    for run in runs.values():
        for line in run.errors:
            console.print(f"  error: {line}", markup=False)
    return [{"fault": name, **_row(run)} for name, run in runs.items()]


def _row(run: LoadRun) -> dict[str, Any]:
    """A run with the figures the table shows."""
    finished = run.states.get("COMPLETE", 0) + run.states.get("PRUNED", 0)
    return asdict(run) | {
        "trials_per_second": finished / run.trial_seconds if run.trial_seconds else None,
        "storage_share": run.storage_seconds / run.worker_seconds if run.worker_seconds else None,
        "lock_share": run.lock_seconds / run.worker_seconds if run.worker_seconds else None,
        "calls_per_trial": run.calls / finished if finished else None,
        "exact": run.exact,
    }


def _load_table(runs: list[LoadRun], max_connections: int) -> Table:
    table = Table(title=f"cheap trials on one PostgreSQL study (max_connections {max_connections})")
    columns = ("workers", "trials/s", "wall s", "storage share", "lock wait", "calls/trial", "peak connections")
    for column in (*columns, "waited", "errors", "warnings", "exact --trials"):
        table.add_column(column)
    for run in runs:
        row = _row(run)
        table.add_row(
            str(run.workers),
            f"{row['trials_per_second'] or 0:.2f}",
            f"{run.wall:.0f}",
            f"{row['storage_share'] or 0:.1%}",
            f"{row['lock_share'] or 0:.1%}",
            f"{row['calls_per_trial'] or 0:.0f}",
            str(run.peak_connections),
            str(run.waited),
            str(len(run.errors)),
            str(run.warnings),
            str(run.exact),
        )
    return table


def _proxy_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="the storage alone (bench/load_proxy.py): trials of an objective that trains nothing")
    for column in ("processes", "direct trials/s", "proxy trials/s", "direct connections", "proxy connections"):
        table.add_column(column)
    for n in sorted({row["processes"] for row in rows}):
        direct, proxy = (next(r for r in rows if r["processes"] == n and r["mode"] == m) for m in ("direct", "proxy"))
        table.add_row(
            str(n),
            f"{direct['trials_per_second']:.1f}",
            f"{proxy['trials_per_second']:.1f}",
            str(direct["peak_connections"]),
            str(proxy["peak_connections"]),
        )
    return table


def connect_cost(server: Postgres, calls: int = 50) -> dict[str, float]:
    """Milliseconds of one ``SELECT 1`` on the pooled connection (``open.SERVER_POOL``) and on a new
    one (``NullPool``: connect and scram-sha-256 authentication each time), medians, interleaved."""
    url = engine_url(prepare(server, "connections"))
    engines = {
        "pooled": sqlalchemy.create_engine(url, **SERVER_POOL),
        "new": sqlalchemy.create_engine(url, poolclass=NullPool),
    }
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(calls):
        for name, engine in engines.items():
            start = time.perf_counter()
            with engine.connect() as c:
                c.execute(sqlalchemy.text("SELECT 1"))
            times[name].append(1000 * (time.perf_counter() - start))
    for engine in engines.values():
        engine.dispose()
    return {f"{name}_ms": statistics.median(ts) for name, ts in times.items()}


def _connection_line(cost: dict[str, float]) -> str:
    return (
        f"one storage call's connection: pooled {cost['pooled_ms']:.2f} ms, "
        f"new (NullPool) {cost['new_ms']:.2f} ms (median of 50, SELECT 1)"
    )


if __name__ == "__main__":
    sys.exit(main())
