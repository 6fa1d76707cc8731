"""A loaded model bundle as ONNX: raw rows in, class probabilities out, the preprocessing inside.

torch's current exporter (``dynamo=True``, torch's default since 2.9; it needs ``onnxscript``)
traces the pipeline with ``torch.export`` and writes the opset it targets (18 and up). The
legacy TorchScript exporter (``dynamo=False``) also works offline but is deprecated.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from hpsearch.errors import ConfigError
from hpsearch.training.bundle import LoadedModel


def to_onnx(model: LoadedModel, path: Path) -> None:
    """Write ``model`` to ``path``: input ``x`` (rows, n_features) float32, output ``probabilities``.

    Raises:
        ConfigError: onnxscript (the exporter's translator) is missing, or the file cannot be written.
    """
    try:
        import onnxscript  # noqa: F401 - the exporter imports it; say so in one line if it is missing
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxscript: pip install 'hpsearch[export]'") from None
    n = model.header.input.n_features
    example = (torch.zeros(2, n, dtype=torch.float32),)
    rows = torch.export.Dim("rows")
    # the exporter prints its progress and warns about torch internals: keep both to this call
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" and such
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model.pipeline(),
                example,
                str(path),
                input_names=["x"],
                output_names=["probabilities"],
                dynamic_shapes=({0: rows},),
                external_data=False,
                dynamo=True,
                verbose=False,
            )
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
        finally:
            log.setLevel(level)
