"""A loaded model bundle as ONNX: raw rows in, class probabilities out, the preprocessing inside.

torch's current exporter (``dynamo=True``, torch's default since 2.9; it needs ``onnxscript``)
traces the MLP with its affine input layer (``torch.export``) and writes the opset it targets
(18 and up). An image model is that graph alone: input ``x``, raw pixels. A table model's
graph takes one input per raw column, by name (numbers as float, text as string: an empty
string is a missing value): skl2onnx converts its imputation and one-hot encoding (the bundle's
``frozen`` ColumnTransformer) at the same opset, and ``onnx.compose.merge_models`` feeds that
graph's output to the MLP's ``x``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from hpsearch.errors import ConfigError
from hpsearch.training.bundle import LoadedModel


def to_onnx(model: LoadedModel, path: Path) -> None:
    """Write ``model`` to ``path``: output ``probabilities`` (rows, classes); input ``x`` (rows, n_features)
    float32 for an image model, one (rows, 1) input per raw column for a table model.

    Raises:
        ConfigError: onnxscript (the exporter's translator) or, for a table model, skl2onnx is
            missing, or the file cannot be written.
    """
    try:
        import onnxscript  # noqa: F401 - the exporter imports it; say so in one line if it is missing
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxscript: pip install 'hpsearch[export]'") from None
    mlp = _export_mlp(model)
    graph = mlp if model.frozen is None else _with_preprocessing(model, mlp)
    try:
        path.write_bytes(graph.SerializeToString())
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None


def _export_mlp(model: LoadedModel) -> Any:
    """The affine input layer, the MLP and the softmax as an ONNX ModelProto: ``x`` -> ``probabilities``."""
    n = model.header.input.n_features
    example = (torch.zeros(2, n, dtype=torch.float32),)
    # the exporter prints its progress and warns about torch internals: keep both to this call
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" and such
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                model.pipeline(),
                example,
                input_names=["x"],
                output_names=["probabilities"],
                dynamic_shapes=({0: torch.export.Dim("rows")},),
                dynamo=True,
                verbose=False,
            )
        finally:
            log.setLevel(level)
    assert program is not None  # dynamo=True without a file returns the program
    return program.model_proto


def _with_preprocessing(model: LoadedModel, mlp: Any) -> Any:
    """One graph: a table's raw columns -> skl2onnx's imputation and one-hot encoding -> ``mlp``."""
    try:
        from onnx import compose, version_converter
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise ConfigError("ONNX export of a table model needs skl2onnx: pip install 'hpsearch[export]'") from None
    spec = model.header.input
    types = [
        (name, StringTensorType([None, 1]) if name in spec.categorical else FloatTensorType([None, 1]))
        for name in spec.feature_names or ()
    ]
    opsets = {o.domain or "": o.version for o in mlp.opset_import}
    prep = convert_sklearn(model.frozen, initial_types=types, target_opset={"": opsets[""], "ai.onnx.ml": 3})
    # skl2onnx writes the lowest opset its operators need (11 for numbers alone); merge_models asks
    # both graphs for one opset and one IR version
    if {o.domain: o.version for o in prep.opset_import}.get("") != opsets[""]:
        prep = version_converter.convert_version(prep, opsets[""])
    prep.ir_version = mlp.ir_version
    prep = compose.add_prefix(prep, "preprocess/", rename_inputs=False)
    mlp = compose.add_prefix(mlp, "mlp/", rename_outputs=False)
    merged = compose.merge_models(prep, mlp, io_map=[(prep.graph.output[0].name, "mlp/x")])
    return merged
