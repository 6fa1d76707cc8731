"""A fold-ensemble as one file: the chosen trial's K fold-models, their probabilities averaged.

K-fold search trains K fold-models per trial; for the winner they are a ready ensemble (bagging
over folds). The file is a model bundle (``bundle.py``: safetensors, a JSON header, no pickle) of
format ``hpsearch-ensemble/1``: member k's layers are ``member.{k}.linear.{i}.weight`` and
``.bias``, its affine input layer ``member.{k}.input.shift``, ``.scale`` and ``.offset``, and the
header's ``members`` list holds each member's fitted table preprocessing (fitted on its fold's
training rows alone; None for images, whose members share the pixel scaling). A member of a
table model whose fold lacked a category of the training split takes fewer one-hot inputs: its
inputs are padded with zeros to the MLP's width, as they were in training.

The ensemble's probability of a class is the mean of its members'; its loss is the
cross-entropy of that mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn

from hpsearch.data import Dataset
from hpsearch.data.inputs import table_rows
from hpsearch.data.preprocess import Fitted
from hpsearch.errors import ConfigError, DataError
from hpsearch.training.bundle import KEY, Header, LoadedModel, Preprocess, mlp_from
from hpsearch.training.cv import Member

ENSEMBLE_FORMAT = "hpsearch-ensemble/1"


@dataclass(frozen=True, eq=False)
class Part:
    """One member as stored: its MLP, its affine input layer and a table's preprocessing as its fold fitted it."""

    model: nn.Sequential
    shift: np.ndarray  # float32 per MLP input: (x - shift) / scale - offset
    scale: np.ndarray
    offset: np.ndarray
    fitted: Fitted | None = None


def part(model: nn.Sequential, width: int, fitted: Fitted | None, pixel_max: float) -> Part:
    """Member ``model`` with its affine layer: a table's scaling as its fold fitted it, padded to the MLP's
    ``width`` (a padded input passes as it is), or the pixel scaling of an image model."""
    if fitted is None:
        return Part(
            model, np.zeros(width, np.float32), np.full(width, pixel_max, np.float32), np.zeros(width, np.float32)
        )
    shift, scale, offset = fitted.affine()
    pad = width - len(shift)
    return Part(
        model,
        np.concatenate([shift, np.zeros(pad, np.float32)]),
        np.concatenate([scale, np.ones(pad, np.float32)]),
        np.concatenate([offset, np.zeros(pad, np.float32)]),
        fitted,
    )


def fold_parts(members: list[Member], data: Dataset, pixel_max: float) -> list[Part]:
    """A trial's fold-models (``cross_validate(..., keep_models=True)``) as an ensemble's members."""
    columns = None if data.table is None else data.table.columns
    return [
        part(
            m.model,
            data.n_features,
            None if m.fitted is None or columns is None else Fitted.of(m.fitted, columns),
            pixel_max,
        )
        for m in members
    ]


def save_ensemble(path: Path, parts: list[Part], header: Header) -> None:
    """Write the members and the header (format ``hpsearch-ensemble/1``) to ``path`` as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    for k, p in enumerate(parts):
        linears = [m for m in p.model.modules() if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            tensors[f"member.{k}.linear.{i}.weight"] = lin.weight.detach().cpu().contiguous()
            tensors[f"member.{k}.linear.{i}.bias"] = lin.bias.detach().cpu().contiguous()
        for name, values in (("shift", p.shift), ("scale", p.scale), ("offset", p.offset)):
            tensors[f"member.{k}.input.{name}"] = torch.as_tensor(values, dtype=torch.float32).contiguous()
    raw = header.to_dict() | {
        "format": ENSEMBLE_FORMAT,
        "members": [{"preprocessing": None if p.fitted is None else p.fitted.to_dict()} for p in parts],
    }
    save_file(tensors, str(path), metadata={KEY: json.dumps(raw)})
    path.chmod(0o644)


class Averaged(nn.Module):
    """The members on one input (an image model's raw pixels): the mean of their class probabilities."""

    def __init__(self, members: list[tuple[Preprocess, nn.Sequential]]) -> None:
        super().__init__()
        self.members = nn.ModuleList(nn.Sequential(affine, mlp, nn.Softmax(dim=1)) for affine, mlp in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


class LoadedEnsemble(LoadedModel):
    """A fold-ensemble loaded for use: ``predict`` and ``predict_proba`` on raw rows, averaged over its ``parts``."""

    def __init__(self, header: Header, parts: list[Part]) -> None:
        self.parts = parts
        self.members = [
            (Preprocess(*(torch.from_numpy(a) for a in (p.shift, p.scale, p.offset))), p.model.eval(),
             None if p.fitted is None else p.fitted.frozen())
            for p in parts
        ]  # fmt: skip
        super().__init__(header, self.members[0][1], self.members[0][0])
        self.frozen = self.members[0][2]  # a table model's: each member's own is in ``members``

    def pipeline(self) -> nn.Module:
        """Raw pixels (rows, n_features) -> the mean of the members' probabilities; an image model's only.

        Raises:
            ConfigError: a table model's members read their raw columns each through its own preprocessing.
        """
        if self.frozen is not None:
            raise ConfigError(
                "a fold-ensemble of a table model has one preprocessing per member, so it has no single "
                "input layer: predict and load_model run it; ONNX export takes image models' ensembles"
            )
        return Averaged([(affine, mlp) for affine, mlp, _ in self.members]).eval()

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The mean over the members of their class probabilities of raw rows ``x``, (rows, classes)."""
        if self.frozen is None:
            return super().predict_proba(x)
        spec, width = self.header.input, self.header.sizes[0]
        if not isinstance(x, pd.DataFrame):
            x = pd.DataFrame(np.asarray(x), columns=list(spec.feature_names or ()))
        frame = table_rows(x, spec, "the rows given")
        total: torch.Tensor | None = None
        for affine, mlp, frozen in self.members:
            assert frozen is not None  # every member of a table model has its preprocessing
            inputs = np.zeros((len(frame), width), dtype=np.float32)
            encoded = frozen.transform(frame)
            inputs[:, : encoded.shape[1]] = encoded
            p = torch.softmax(mlp(affine(torch.from_numpy(inputs))), dim=1)
            total = p if total is None else total + p
        assert total is not None
        out: np.ndarray = (total / len(self.members)).numpy()
        return out


def read_ensemble(path: Path, raw: dict[str, Any], tensors: dict[str, torch.Tensor]) -> LoadedEnsemble:
    """The fold-ensemble a file of format ``hpsearch-ensemble/1`` holds (its header and tensors, read).

    Raises:
        DataError: the members' tensors do not match the header.
    """
    header = Header.from_dict(raw)
    parts = []
    try:
        for k, member in enumerate(raw["members"]):
            prefix = f"member.{k}."
            mine = {n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}
            shift, scale, offset = (mine[f"input.{n}"].numpy() for n in ("shift", "scale", "offset"))
            prep = member.get("preprocessing")
            fitted = None if prep is None else Fitted.from_dict(prep)
            parts.append(Part(mlp_from(path, header, mine), shift, scale, offset, fitted))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not an hpsearch fold-ensemble ({type(e).__name__}: {e})") from None
    if not parts:
        raise DataError(f"{path}: a fold-ensemble of no member")
    return LoadedEnsemble(header, parts)
