"""The tested model as one self-describing file, ``model.safetensors``: weights plus a JSON header.

Why safetensors: loading it runs no code. A pickle (``torch.save``'s default, or a state_dict
loaded without ``weights_only``) can name any callable and run it on load; a safetensors file is
a JSON table of tensor names, dtypes and offsets followed by raw bytes, readable from Rust,
JavaScript or C++ as well as Python. Its header has a free ``__metadata__`` map of strings,
which carries ours as one JSON string, so weights and description cannot drift apart.

The file holds, as tensors, each Linear layer's ``linear.{i}.weight`` and ``linear.{i}.bias``
(numbered by Linear layer, so dropout does not shift them) and the input's affine preprocessing
``input.shift`` and ``input.scale`` (per feature: ``(raw - shift) / scale``; a table's fitted
StandardScaler mean and scale, or 0 and the raw pixel maximum of an image). The header holds the
layer sizes and dropout, the class names, the input (``data.inputs.InputSpec``), the data set and
its fingerprint, the study and trial, the test figures with their intervals, and the library
versions.
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

from hpsearch.data.inputs import InputSpec
from hpsearch.errors import DataError
from hpsearch.training.model import build_mlp

FORMAT = "hpsearch-model/1"
_KEY = "hpsearch"  # the metadata entry holding the JSON header


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
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
        }

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
        )


class Preprocess(nn.Module):
    """Raw input -> what the MLP was trained on: ``(x - shift) / scale`` per feature."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, shift: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", shift.float())
        self.register_buffer("scale", scale.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


def save_bundle(path: Path, model: nn.Module, header: Header, shift: np.ndarray, scale: np.ndarray) -> None:
    """Write ``model`` (a ``build_mlp`` network) and its header to ``path`` as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        tensors[f"linear.{i}.weight"] = lin.weight.detach().cpu().contiguous()
        tensors[f"linear.{i}.bias"] = lin.bias.detach().cpu().contiguous()
    tensors["input.shift"] = torch.as_tensor(shift, dtype=torch.float32).contiguous()
    tensors["input.scale"] = torch.as_tensor(scale, dtype=torch.float32).contiguous()
    save_file(tensors, str(path), metadata={_KEY: json.dumps(header.to_dict())})
    path.chmod(0o644)  # safetensors writes the file readable by its owner alone; a model is meant to be shared


class LoadedModel:
    """A bundle loaded for use: ``module`` (the MLP, logits), ``predict`` and ``predict_proba`` on raw rows."""

    def __init__(self, header: Header, module: nn.Sequential, preprocess: Preprocess) -> None:
        self.header = header
        self.module = module  # raw rows go through ``preprocess`` first
        self.preprocess = preprocess

    @property
    def classes(self) -> tuple[str, ...]:
        return self.header.classes

    def pipeline(self) -> nn.Module:
        """One module from raw rows (rows, n_features) to class probabilities (rows, classes)."""
        return nn.Sequential(self.preprocess, self.module, nn.Softmax(dim=1)).eval()

    def rows(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """``x`` as raw float32 rows of the model's features: a DataFrame by column name (a table
        model; extra columns such as a label are ignored) or an array of rows or images.

        Raises:
            DataError: missing feature columns, or rows of the wrong size.
        """
        spec = self.header.input
        if isinstance(x, pd.DataFrame):
            if spec.feature_names is None:
                x = x.to_numpy()
            else:
                missing = [n for n in spec.feature_names if n not in x.columns]
                if missing:
                    raise DataError(f"missing feature columns: {', '.join(missing[:5])}")
                x = x[list(spec.feature_names)].to_numpy()
        a = np.asarray(x, dtype=np.float32)
        if a.ndim == 1 or a.ndim < 2 or int(np.prod(a.shape[1:])) != spec.n_features:
            raise DataError(f"the model takes rows of {spec.n_features} features, but got an array of shape {a.shape}")
        return np.ascontiguousarray(a.reshape(len(a), -1))

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
    """Read a ``model.safetensors`` written by ``save_bundle``; no code in it runs.

    Raises:
        DataError: a missing file, or one that is not an hpsearch model bundle.
    """
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
        raw = json.loads(meta[_KEY])
        if raw.get("format") != FORMAT:
            raise DataError(f"{path}: model format {raw.get('format')!r}, this hpsearch reads {FORMAT!r}")
        header = Header.from_dict(raw)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{path}: not an hpsearch model bundle ({type(e).__name__}: {e})") from None
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
    return LoadedModel(header, module.eval(), Preprocess(tensors["input.shift"], tensors["input.scale"]))
