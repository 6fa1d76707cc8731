"""The notebook how-to's runnable blocks and examples/notebook.py run, as a reader would run them.

docs/how-to/notebook.md follows the docs' convention (a fenced block right after ``<!-- runnable -->``;
python blocks in one namespace in order, bash blocks with ``hpsearch`` on PATH, in an empty folder).
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "how-to" / "notebook.md"
RUNNABLE = re.compile(r"^<!-- runnable -->\n```(bash|python)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the python blocks train tiny MLPs: tests/conftest.py


def test_the_notebook_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = RUNNABLE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 9
    monkeypatch.chdir(tmp_path)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = os.environ | {"PATH": path, "COLUMNS": "100", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    namespace: dict[str, object] = {"__name__": "__main__"}
    for n, (kind, code) in enumerate(blocks, 1):
        if kind == "python":
            exec(compile(code, f"{PAGE.name} block {n}", "exec"), namespace)
        else:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"block {n}:\n{done.stdout}\n{done.stderr}"


def test_the_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = runpy.run_path(str(ROOT / "examples" / "notebook.py"), run_name="__main__")
    assert found["search"].best_estimator_.n_features_in_ == 64 and len(found["outer"]) == 3
