"""The tested model as one self-describing file, ``model.safetensors``: weights plus a JSON header.

Why safetensors: loading it runs no code. A pickle (``torch.save``'s default, or a state_dict
loaded without ``weights_only``) can name any callable and run it on load; a safetensors file is
a JSON table of tensor names, dtypes and offsets followed by raw bytes, readable from Rust,
JavaScript or C++ as well as Python. Its header has a free ``__metadata__`` map of strings,
which carries ours as one JSON string, so weights and description cannot drift apart.

The file holds, as tensors, each Linear layer's ``linear.{i}.weight`` and ``linear.{i}.bias``
(numbered by Linear layer, so dropout does not shift them) and the input's affine preprocessing
``input.shift`` and ``input.scale`` (per MLP input: ``(x - shift) / scale - offset``; a table's
fitted StandardScaler mean and scale, 0 and 1 for its one-hot inputs, or 0 and the raw pixel
maximum of an image) and, for a table, ``input.offset``: what rounding the mean to float32 left
over, in scaled units (``data.preprocess.Fitted.affine``). The header holds the layer sizes and
dropout, the class names, the input (``data.inputs.InputSpec``), the data set and its
fingerprint, the study and trial, the test figures with their intervals, and the library
versions; a table model's header (format 2) adds its fitted preprocessing
(``data.preprocess.Fitted``: each numeric column's median, mean and scale, each categorical
column's categories), which turns raw columns into the MLP's inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from hpsearch.config import TrainConfig
from hpsearch.data import Dataset
from hpsearch.data.inputs import InputSpec, table_rows
from hpsearch.data.preprocess import Fitted
from hpsearch.errors import DataError
from hpsearch.training.model import build_mlp, layer_sizes

FORMAT = "hpsearch-model/1"  # an image model, or a table model of numbers alone scaled by input.shift/scale
TABLE_FORMAT = "hpsearch-model/2"  # a table model whose header holds its fitted preprocessing
KEY = "hpsearch"  # the metadata entry holding the JSON header


@dataclass(frozen=True, kw_only=True)
class Header:
    """What the model is, where it came from, and how good it was on the test split."""

    sizes: tuple[int, ...]  # input, hidden layers..., output
    dropout: float  # after each hidden ReLU while training; off when predicting
    classes: tuple[str, ...]  # the name of output i
    input: InputSpec
    dataset: str  # the data set's name (a table's file stem)
    fingerprint: str  # SHA-256 of the study's rows (data.fingerprint)
    study: str
    trial: int
    params: dict[str, Any] = field(default_factory=dict)  # the trial's searched parameters
    test: dict[str, Any] = field(default_factory=dict)  # test figures and their 95% intervals
    versions: dict[str, str] = field(default_factory=dict)
    preprocessing: Fitted | None = None  # a table's, fitted on the whole training split; None: none

    @classmethod
    def of(cls, data: Dataset, cfg: TrainConfig, spec: InputSpec, **about: Any) -> Header:
        """The header of an MLP of ``cfg``'s shape for ``data``, read through ``spec``; ``about``: the other
        fields (where it came from, its test figures)."""
        sizes = tuple(layer_sizes(data.n_features, data.n_classes, cfg.depth, cfg.width))
        return cls(sizes=sizes, dropout=cfg.dropout, classes=data.classes, input=spec, dataset=data.name, **about)

    def to_dict(self) -> dict[str, Any]:
        prep = {} if self.preprocessing is None else {"preprocessing": self.preprocessing.to_dict()}
        return {
            "format": FORMAT if self.preprocessing is None else TABLE_FORMAT,
            "sizes": list(self.sizes),
            "dropout": self.dropout,
            "classes": list(self.classes),
            "input": self.input.to_dict(),
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "study": self.study,
            "trial": self.trial,
            "params": self.params,
            "test": self.test,
            "versions": self.versions,
        } | prep

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Header:
        return cls(
            sizes=tuple(int(s) for s in raw["sizes"]),
            dropout=float(raw["dropout"]),
            classes=tuple(str(c) for c in raw["classes"]),
            input=InputSpec.from_dict(raw["input"]),
            dataset=str(raw["dataset"]),
            fingerprint=str(raw["fingerprint"]),
            study=str(raw["study"]),
            trial=int(raw["trial"]),
            params=dict(raw.get("params", {})),
            test=dict(raw.get("test", {})),
            versions=dict(raw.get("versions", {})),
            preprocessing=None if raw.get("preprocessing") is None else Fitted.from_dict(raw["preprocessing"]),
        )


class Preprocess(nn.Module):
    """Raw input -> what the MLP was trained on: ``(x - shift) / scale - offset`` per feature."""

    shift: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor

    def __init__(self, shift: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("shift", shift.float())
        self.register_buffer("scale", scale.float())
        self.register_buffer("offset", torch.zeros_like(self.shift) if offset is None else offset.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale - self.offset


def save_bundle(
    path: Path,
    model: nn.Module,
    header: Header,
    shift: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray | None = None,
) -> None:
    """Write ``model`` (a ``build_mlp`` network), its header and its input's affine layer to ``path`` as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        tensors[f"linear.{i}.weight"] = lin.weight.detach().cpu().contiguous()
        tensors[f"linear.{i}.bias"] = lin.bias.detach().cpu().contiguous()
    tensors["input.shift"] = torch.as_tensor(shift, dtype=torch.float32).contiguous()
    tensors["input.scale"] = torch.as_tensor(scale, dtype=torch.float32).contiguous()
    if offset is not None:
        tensors["input.offset"] = torch.as_tensor(offset, dtype=torch.float32).contiguous()
    save_file(tensors, str(path), metadata={KEY: json.dumps(header.to_dict())})
    path.chmod(0o644)  # safetensors writes the file readable by its owner alone; a model is meant to be shared


class LoadedModel:
    """A bundle loaded for use: ``module`` (the MLP, logits), ``predict`` and ``predict_proba`` on raw rows."""

    def __init__(self, header: Header, module: nn.Sequential, preprocess: Preprocess) -> None:
        self.header = header
        self.module = module  # raw rows go through ``frozen`` (a table's) and ``preprocess`` first
        self.preprocess = preprocess
        # a table's imputation and one-hot encoding as fitted, rebuilt from the header (the scaling is ``preprocess``)
        self.frozen = None if header.preprocessing is None else header.preprocessing.frozen()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.header.classes

    def pipeline(self) -> nn.Module:
        """One module from the MLP's inputs (rows, n_features) to class probabilities (rows, classes): for an
        image model, raw pixels; for a table model, what ``frozen`` makes of its raw columns."""
        return nn.Sequential(self.preprocess, self.module, nn.Softmax(dim=1)).eval()

    def rows(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """``x`` as float32 rows of the MLP's inputs, before ``preprocess``: a table model reads a DataFrame by
        column name (in any order; extra columns such as a label are ignored; missing values and unseen
        categories are welcome) or an array of rows in ``header.input.feature_names`` order; an image
        model reads an array of rows or images.

        Raises:
            DataError: missing feature columns, text where numbers are read, rows of the wrong size.
        """
        spec = self.header.input
        if spec.feature_names is not None:
            if not isinstance(x, pd.DataFrame):
                a = np.asarray(x)
                if a.ndim != 2 or a.shape[1] != len(spec.feature_names):
                    raise DataError(f"the model takes rows of {len(spec.feature_names)} columns, but got {a.shape}")
                x = pd.DataFrame(a, columns=list(spec.feature_names))
            frame = table_rows(x, spec, "the rows given")
            if self.frozen is not None:
                return np.ascontiguousarray(self.frozen.transform(frame), dtype=np.float32)
            x = frame.to_numpy(dtype=np.float32)  # a format-1 table model: numbers, scaled by ``preprocess``
            if not np.isfinite(x).all():
                raise DataError("the rows given hold missing values, which this model (format 1) cannot take")
        elif isinstance(x, pd.DataFrame):
            x = x.to_numpy()
        a = np.asarray(x, dtype=np.float32)
        if a.ndim < 2 or int(np.prod(a.shape[1:])) != spec.n_features:
            raise DataError(f"the model takes rows of {spec.n_features} features, but got an array of shape {a.shape}")
        return np.array(a.reshape(len(a), -1), order="C")  # a copy: torch takes no read-only array

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Class probabilities of raw rows ``x``, shape (rows, classes), in the order of ``classes``."""
        pipe = self.pipeline()
        out: np.ndarray = pipe(torch.from_numpy(self.rows(x))).numpy()
        return out

    def predict(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The predicted class name of each raw row of ``x``."""
        names: np.ndarray = np.asarray(self.classes, dtype=object)
        chosen: np.ndarray = names[self.predict_proba(x).argmax(axis=1)]
        return chosen


def load_bundle(path: Path) -> LoadedModel:
    """Read a ``model.safetensors`` written by ``save_bundle`` (or ``ensemble.save_ensemble``); no code in it runs.

    Raises:
        DataError: a missing file, or one that is not an hpsearch model bundle.
    """
    from hpsearch.training.ensemble import ENSEMBLE_FORMAT, read_ensemble

    if not path.exists():
        raise DataError(f"no such model file: {path}")
    if path.is_dir():
        path = path / "model.safetensors"
        if not path.exists():
            raise DataError(f"{path.parent}: no model.safetensors (final-test writes one)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        raw = json.loads(meta[KEY])
        if raw.get("format") not in (FORMAT, TABLE_FORMAT, ENSEMBLE_FORMAT):
            raise DataError(
                f"{path}: model format {raw.get('format')!r}, this hpsearch reads {FORMAT!r}, {TABLE_FORMAT!r} "
                f"and {ENSEMBLE_FORMAT!r}"
            )
        header = Header.from_dict(raw)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: not an hpsearch model bundle ({type(e).__name__}: {e})") from None
    if raw["format"] == ENSEMBLE_FORMAT:
        return read_ensemble(path, raw, tensors)
    affine = Preprocess(tensors["input.shift"], tensors["input.scale"], tensors.get("input.offset"))
    return LoadedModel(header, mlp_from(path, header, tensors), affine)


def mlp_from(path: Path, header: Header, tensors: dict[str, torch.Tensor]) -> nn.Sequential:
    """The header's MLP, in eval mode, holding the ``linear.{i}.weight`` and ``.bias`` tensors.

    Raises:
        DataError: a layer's tensors do not have the header's sizes.
    """
    sizes = header.sizes
    width = sizes[1] if len(sizes) > 2 else 1
    module = build_mlp(sizes[0], sizes[-1], len(sizes) - 2, width, header.dropout, generator=torch.Generator())
    linears = [m for m in module if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, (lin, (a, b)) in enumerate(zip(linears, pairwise(sizes), strict=True)):
            weight, bias = tensors[f"linear.{i}.weight"], tensors[f"linear.{i}.bias"]
            if tuple(weight.shape) != (b, a):
                raise DataError(f"{path}: layer {i} holds {tuple(weight.shape)} weights, the header says {(b, a)}")
            lin.weight.copy_(weight)
            lin.bias.copy_(bias)
    return module.eval()
