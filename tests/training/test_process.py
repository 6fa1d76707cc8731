"""Training's process settings: set for the call, the caller's given back, even torch's thread pool's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hpsearch.training.process import flushes_denormals, training_settings


def test_the_settings_hold_inside_and_the_callers_come_back_after_an_error() -> None:
    precision, threads = torch.get_float32_matmul_precision(), torch.get_num_threads()
    torch.set_float32_matmul_precision("medium")
    try:
        with pytest.raises(ZeroDivisionError), training_settings():
            assert flushes_denormals() and torch.get_float32_matmul_precision() == "highest"
            torch.set_num_threads(1)  # as fit_folds does for its fold-model threads
            _ = 1 / 0
        assert not flushes_denormals()
        assert torch.get_float32_matmul_precision() == "medium" and torch.get_num_threads() == threads
    finally:
        torch.set_float32_matmul_precision(precision)


def test_torch_threads_started_during_training_do_not_flush_after_it() -> None:
    # a fresh process: torch starts its intra-op threads at the first parallel op, and a thread
    # started while the flag is on keeps it; training must not be where they start
    code = (
        "import torch\n"
        "from hpsearch.config import TrainConfig\n"
        "from hpsearch.training import fit\n"
        "x, y = torch.rand(256, 300), torch.randint(0, 3, (256,))\n"
        "fit(x, y, 3, TrainConfig(depth=1, width=512, epochs=1, batch_size=128))\n"
        "print(int(((torch.full((1 << 22,), 1e-40) * 1.0) == 0).sum()))\n"
    )
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
