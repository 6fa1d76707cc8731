"""The storage alone, direct or through Optuna's gRPC proxy: would the proxy carry more workers?

hpsearch's workers cannot run behind ``optuna.storages.GrpcStorageProxy`` (it records no
heartbeats, and gives no connection to take the study's lock on; see docs/benchmarks.md), so this
measures what the proxy would buy before anyone builds it: ``n`` processes each run trials of an
objective that makes a cheap hpsearch trial's storage calls and trains nothing (4 parameters,
2 intermediate values, 4 user attributes), on one study, either through hpsearch's own storage
(``open_storage``: one pooled connection per process) or through one proxy server
(``run_grpc_proxy_server`` over ``get_storage``, its default 10 threads). Per mode and count: trials
per second and the connections held at the busiest poll of ``pg_stat_activity``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

import optuna
import sqlalchemy

from bench.load_run import ROLE, ROOT, prepare
from bench.postgres import Postgres
from hpsearch.store import close_storage, engine_url, open_storage

STUDY = "proxy-bench"


def compare(server: Postgres, counts: list[int], trials: int) -> list[dict[str, Any]]:
    """For each count of processes, trials/s and peak connections, direct and through the proxy."""
    rows = []
    for n in counts:
        for mode in ("direct", "proxy"):
            url = prepare(server, f"{mode}{n}")
            rows.append({"mode": mode, "processes": n, "trials": trials, **_run(server, url, mode, n, trials)})
    return rows


def _run(server: Postgres, url: str, mode: str, n: int, trials: int) -> dict[str, Any]:
    proxy, where = None, url
    if mode == "proxy":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code = (
            "import optuna; from optuna.storages import get_storage, run_grpc_proxy_server; "
            f"run_grpc_proxy_server(get_storage({engine_url(url)!r}), host='127.0.0.1', port={port})"
        )
        proxy = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL, cwd=ROOT)
        where = f"grpc://127.0.0.1:{port}"
    storage = _storage(url)
    optuna.create_study(storage=storage, study_name=STUDY, direction="maximize")
    close_storage(storage)
    per = [trials // n + (i < trials % n) for i in range(n)]
    command = [sys.executable, "-m", "bench.load_proxy", where]
    clients = [subprocess.Popen([*command, str(k)], stdout=subprocess.PIPE, text=True, cwd=ROOT) for k in per]
    watch = sqlalchemy.create_engine(engine_url(server.url(url.rsplit("/", 1)[1])), isolation_level="AUTOCOMMIT")
    peak = 0
    while any(c.poll() is None for c in clients):
        with watch.connect() as c:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = :r"
            peak = max(peak, c.execute(sqlalchemy.text(query), {"r": ROLE}).scalar_one())
        time.sleep(0.05)
    watch.dispose()
    spans = [json.loads(c.communicate()[0]) for c in clients]
    if proxy is not None:
        proxy.terminate()
        proxy.wait()
    seconds = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return {"trials_per_second": trials / seconds, "peak_connections": peak}


def _storage(where: str) -> optuna.storages.BaseStorage:
    if where.startswith("grpc://"):
        host, port = where.removeprefix("grpc://").rsplit(":", 1)
        storage = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
        storage.wait_server_ready(timeout=60)
        return storage
    return open_storage(where)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_int("depth", 1, 2) + trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_int("width", 32, 64, log=True)
    trial.suggest_categorical("optimizer", ["sgd", "adam"])
    trial.set_user_attr("worker", "bench")
    for step in range(2):
        trial.report(x, step)
    for key in ("folds", "cv_mean", "cv_std"):
        trial.set_user_attr(key, [x])
    return x


def _client(where: str, trials: int) -> None:
    """One process: ``trials`` trials on the study; prints its first and last second (wall clock)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=STUDY, storage=_storage(where))
    start = time.time()
    study.optimize(_objective, n_trials=trials)
    print(json.dumps({"start": start, "end": time.time()}))


if __name__ == "__main__":
    _client(sys.argv[1], int(sys.argv[2]))
