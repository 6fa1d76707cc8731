"""What training needs of the process (flushed denormals, float32 matrix products), set for a call and given back.

hpsearch is a library too: a notebook that calls ``run_study`` or ``final_test`` finds its
process as it left it. ``training_settings`` sets, for the duration of a call, what the trainer
needs, and restores the caller's settings after:

- **Flush-to-zero for denormal floats.** Late in training, gradients and optimizer states hold
  denormals that make CPU matrix products and optimizer steps several times slower. The flag
  is per thread (x86's MXCSR); a thread inherits its creator's, so the fold-model threads that
  ``folds.fit_folds`` starts inside the call flush too. torch's OpenMP pool threads keep the
  flag they were created with: the pool is started *before* the flag is set, so that threads it
  creates cannot carry the flag out of the call (they then compute denormals at full cost; on
  one core per fold-model, as ``fit_folds`` runs, they are not used at all).
- **Full float32 matrix products.** ``torch.set_float32_matmul_precision("highest")``: a caller's
  "high" or "medium" would let CUDA use TF32 (10-bit mantissa) and change every figure. The
  trainer's figures are float32 figures on every device; the study does not need to store it.
- **torch's thread count**, which ``fit_folds`` divides among its fold-model threads.

torch offers no getter for the denormal flag, so it is read off its effect: 1e-40 times 1 is
zero with the flag on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_DENORMAL = 1e-40  # below float32's smallest normal number, 1.18e-38


def flushes_denormals() -> bool:
    """Whether this thread flushes denormal floats to zero (``torch.set_flush_denormal``)."""
    return bool((torch.tensor([_DENORMAL]) * 1.0).item() == 0.0)


def _start_thread_pool() -> None:
    # an element-wise op long enough for torch to split it across its intra-op threads
    torch.zeros(1 << 17).add_(1.0)


@contextmanager
def training_settings() -> Iterator[None]:
    """Flush denormals (this thread and those it starts), full float32 matmul; the caller's settings after."""
    threads, flushing, precision = torch.get_num_threads(), flushes_denormals(), torch.get_float32_matmul_precision()
    _start_thread_pool()
    torch.set_flush_denormal(True)
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_flush_denormal(flushing)
        torch.set_float32_matmul_precision(precision)
        torch.set_num_threads(threads)
