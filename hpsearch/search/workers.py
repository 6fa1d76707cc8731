"""Many workers, one study: a lock around trial creation, the trial loop, worker processes.

Optuna's ``MaxTrialsCallback`` stops a worker after its trial ends, so workers that start the
last trials together overshoot. Here a worker starts a trial only under the study's lock: it
fails the trials whose worker stopped beating (see ``store/recovery.py``), counts finished (complete
or pruned) and running trials, and creates its trial only while their sum is below the target;
the objective releases the lock once its trial exists. So the study stops at exactly the target; a worker that finds no
free slot waits, as a running trial that ends pruned or failed frees its slot (the lock:
``store/lock.py``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import optuna
import torch
from optuna.trial import TrialState

from hpsearch.errors import HpsearchError
from hpsearch.store import fail_unbeaten, first_beat, open_lock, quiet_heartbeats, watch_file
from hpsearch.store.schema import FINISHED

Ending = Literal["done", "timeout"]
_log = logging.getLogger("hpsearch")


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """How this machine works on a study: processes, threads, heartbeats."""

    jobs: int = 1  # worker processes on this machine, this one included
    threads: int | None = None  # torch threads per worker; None: torch's default (all cores)
    heartbeat: int = 10  # seconds between a running trial's heartbeats
    poll: float = 2.0  # seconds between looks at the study while other workers hold every slot
    patience: float = 120.0  # seconds to wait for a database server that stops answering (a restart)


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, and a cgroup's CPU quota where one is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no quota) or "200000 100000" (two cores' worth)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    storage: optuna.storages.BaseStorage,
    url: str,
    target: int,
    timeout: float | None,
    poll: float,
    before_trial: Callable[[int], None],
    callbacks: list[Any],
    patience: float = 0.0,
) -> Ending:
    """Run trials one at a time until ``study`` (in ``storage``, opened from ``url``) holds ``target`` finished trials.

    Args:
        timeout: seconds after which no new trial starts, and the running trial stops after its
            current epoch (``past_deadline``); None: no limit.
        poll: seconds between looks at the study while other workers' trials hold every slot.
        before_trial: called under the lock with the number the next new trial will get.
        patience: seconds the lock waits for a database server that stopped answering.

    Returns:
        Why it stopped: the target reached, or the timeout. (A moved or removed SQLite file
        raises StorageError.)
    """
    lock, check = open_lock(url, study.study_name, storage, patience), watch_file(url)

    def gated(trial: optuna.Trial) -> float:
        first_beat(storage, study.study_name, trial.number)  # see fail_unbeaten
        lock.release()  # the trial exists, is counted as running, and beats
        return objective(trial)

    start = time.monotonic()

    main = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not a worker process of --jobs
    if main:
        _stop.clear()
    ctrl_c = _sigint(_first_ctrl_c) if main else contextlib.nullcontext()
    with quiet_heartbeats(), ctrl_c, contextlib.closing(lock), _until(None if timeout is None else start + timeout):
        while timeout is None or time.monotonic() - start < timeout:
            stop_point()
            check()
            lock.acquire()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                fail_unbeaten(study, storage)
                states = [t.state for t in study.get_trials(deepcopy=False)]
                finished = sum(states.count(s) for s in FINISHED)
                if finished >= target:
                    return "done"
                if finished + states.count(TrialState.RUNNING) < target:
                    number = len(states)
                    before_trial(number)
                    try:
                        study.optimize(gated, n_trials=1, callbacks=callbacks, catch=())
                    except Exception as e:
                        if not _taken_away(study, number, e):
                            check()  # a moved SQLite file explains a failed write better than "no such table"
                            raise
                        _log.warning(
                            "trial %d was failed by another worker while this one ran it (its heartbeats were "
                            "late); its retry runs instead, and this worker goes on",
                            number,
                        )
                    continue
            finally:
                lock.release()
            time.sleep(poll)
    return "timeout"


def _taken_away(study: optuna.Study, number: int, error: Exception) -> bool:
    """Whether trial ``number`` ended because another worker failed it: it missed its heartbeats (a
    stalled machine, a storage that was away) and was failed and retried while this worker ran it.
    Optuna then refuses this worker's next write (``UpdateFinishedTrialError``) or its verdict
    (``ValueError``: "Cannot tell a FAIL trial", which Optuna's own bookkeeping turns into an
    ``AssertionError`` when the objective itself had succeeded)."""
    if not isinstance(error, optuna.exceptions.UpdateFinishedTrialError | ValueError | AssertionError):
        return False
    mine = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    return bool(mine) and mine[0].state == TrialState.FAIL


@contextlib.contextmanager
def worker_processes(n: int, work: Callable[..., None], args: tuple[Any, ...]) -> Iterator[None]:
    """Run ``work(*args, ready)`` in ``n`` more processes while the body runs; spawned, so torch starts clean.

    The body starts once each has called ``ready()`` (or ended). On leaving, waits for them and
    raises the first error one reported. They run in a process group of their own: a Ctrl-C
    reaches this process only, and if the body raises, it interrupts them (their running trials
    end failed, as on Ctrl-C); a worker whose parent dies stops too.
    """
    ctx = multiprocessing.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []
    try:
        for _ in range(n):
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_worker_main, args=(work, args, send))
            with _sigint(signal.SIG_IGN):  # inherited until the worker has left this process group
                process.start()
            send.close()
            workers.append((process, receive))
        for _, receive in workers:  # all start together: wait until each has opened the study
            receive.poll(300)
        yield
    except BaseException:
        # SIGINT each, again every 5 s while one lives on: a worker still starting up ignores it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (alive := [p for p, _ in workers if p.is_alive()]):
            for process in alive:
                os.kill(process.pid, signal.SIGINT)
            multiprocessing.connection.wait([p.sentinel for p in alive], timeout=5)
        _join(workers, timeout=0)
        raise
    errors = _join(workers, timeout=None)
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _sigint(handler: Any) -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()  # the only one that may set handlers
    previous = signal.signal(signal.SIGINT, handler) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _join(workers: list[tuple[Any, Connection]], timeout: float | None) -> list[BaseException]:
    errors: list[BaseException] = []
    for process, receive in workers:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        with contextlib.suppress(EOFError):  # a killed worker says nothing; its trial is retried by heartbeat
            while receive.poll():
                if (message := receive.recv()) not in (None, "ready"):
                    errors.append(message)
        receive.close()
    return errors


def _worker_main(work: Callable[..., None], args: tuple[Any, ...], send: Connection) -> None:
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, lambda signum, frame: _stop.set())  # see _first_ctrl_c
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_stop_when_gone, args=(parent.sentinel,), daemon=True).start()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    error: BaseException | None = None
    try:
        work(*args, lambda: send.send("ready"))
    except HpsearchError as e:
        error = e
    except KeyboardInterrupt:
        pass  # the parent was interrupted too, and says so
    except Exception as e:  # noqa: BLE001 - the parent prints it in one line, as the CLI does
        error = RuntimeError(f"{type(e).__name__} in a worker process: {e}")
    send.send(error)
    send.close()


def _stop_when_gone(parent: int) -> None:
    multiprocessing.connection.wait([parent])
    _stop.set()  # the parent died: end the running trial as on Ctrl-C


_stop = threading.Event()  # set by Ctrl-C, or in a worker process by its parent
_deadline: float | None = None  # time.monotonic() at --timeout, while run_trials runs with one


@contextlib.contextmanager
def _until(deadline: float | None) -> Iterator[None]:
    global _deadline
    _deadline = deadline
    try:
        yield
    finally:
        _deadline = None


def past_deadline() -> bool:
    """True once --timeout has passed: the running trial stops after its epoch (the budget is the study's)."""
    return _deadline is not None and time.monotonic() >= _deadline


def stop_point() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed (called at each epoch's end and between trials)."""
    if _stop.is_set():
        raise KeyboardInterrupt


def _first_ctrl_c(signum: int, frame: object) -> None:
    # A KeyboardInterrupt at any bytecode can cut Optuna's recording of a trial's end in half, or
    # land in a weakref callback, where Python drops it with a traceback: the first Ctrl-C stops
    # at the next stop point, a second one at once. (A worker process only ever sets the flag.)
    if _stop.is_set():
        raise KeyboardInterrupt
    _stop.set()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Give this worker's torch ``threads`` threads (None: as many as it has) while the body runs."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
