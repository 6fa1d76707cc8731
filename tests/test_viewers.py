"""optuna-dashboard reads what hpsearch stores: the study, its labelled objective, its trials and their folds."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpsearch.store.schema import TRIAL_FOLDS

pytest.importorskip("optuna_dashboard")
_START = "from optuna_dashboard._cli import main; main()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def dashboard(small_study: tuple[Path, str], tmp_path: Path) -> Iterator[str]:
    """optuna-dashboard serving a copy of the small study on 127.0.0.1; its base URL."""
    db = tmp_path / "study.db"
    shutil.copy(small_study[0], db)
    port = _free_port()
    command = [sys.executable, "-c", _START, f"sqlite:///{db}", "--port", str(port), "--host", "127.0.0.1", "--quiet"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    _, err = server.communicate(timeout=10)
                    pytest.fail(f"optuna-dashboard did not start: {err.decode()[-500:]}")
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


def test_the_dashboard_reads_the_study_its_trials_and_their_folds(
    dashboard: str, small_study: tuple[Path, str]
) -> None:
    [listed] = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert listed["study_name"] == "digits"
    detail = _get(f"{dashboard}/api/studies/{listed['study_id']}")
    assert detail["objective_names"] == ["cv_accuracy"]
    stored = optuna.load_study(study_name="digits", storage=f"sqlite:///{small_study[0]}").trials
    assert [t["number"] for t in detail["trials"]] == [t.number for t in stored]
    for shown, trial in zip(detail["trials"], stored, strict=True):
        assert shown["values"] == [trial.value]
        attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
        assert json.loads(attrs[TRIAL_FOLDS]) == trial.user_attrs[TRIAL_FOLDS]
