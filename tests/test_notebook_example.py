"""examples/notebook.py runs, as a reader would run it (docs/how-to/notebook.md's blocks run in tests/test_docs.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the example trains tiny MLPs: tests/conftest.py


def test_the_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = runpy.run_path(str(ROOT / "examples" / "notebook.py"), run_name="__main__")
    assert found["search"].best_estimator_.n_features_in_ == 64 and len(found["outer"]) == 3
