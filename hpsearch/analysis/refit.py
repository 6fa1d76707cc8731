"""An MLP retrained on all of its rows, as a model to use in memory: final-test's retrain without a test split.

``refit`` trains with ``final_test.retrain``, the code ``final-test`` retrains the winner with (the same
rows, settings and seed give the same weights), and wraps the MLP and its preprocessing in the
``LoadedModel`` that ``model.safetensors`` loads as; so a model used in memory (``hpsearch.MLPClassifier``)
and the same model saved (``save``) and loaded (``hpsearch.load_model``) predict alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hpsearch.analysis.final_test import describe_model, retrain
from hpsearch.config import IN_MEMORY, DataConfig, TrainConfig
from hpsearch.data import Dataset
from hpsearch.data.arrays import in_memory_summary
from hpsearch.data.inputs import input_spec
from hpsearch.data.preprocess import Fitted
from hpsearch.store.schema import library_versions
from hpsearch.training import training_settings
from hpsearch.training.bundle import LoadedModel, Preprocess, save_bundle


def refit(
    train: Dataset, cfg: TrainConfig, *, study: str = "", trial: int = -1, params: dict[str, Any] | None = None
) -> LoadedModel:
    """Train an MLP of ``cfg`` on every row of ``train`` (a table's preprocessing fitted on them), on the CPU after.

    Args:
        train: the rows, read as a table or as images.
        cfg: the settings and the seed; the MLP takes fold 0's seed stream, as final-test's does.
        study, trial, params: where the settings came from, for the header (-1: no trial).

    Raises:
        ConfigError: the training loss became NaN or infinite.
    """
    what = f"trial {trial}" if trial >= 0 else "the MLP"
    with training_settings():  # the figures of a float32 model on every device, whatever the caller set
        module, prep = retrain(train, cfg, what)
    fitted = None if prep is None or train.table is None else Fitted.of(prep, train.table.columns)
    header, (shift, scale, offset) = describe_model(
        train,
        cfg,
        input_spec(DataConfig(dataset=IN_MEMORY), train),
        fitted,
        fingerprint=in_memory_summary(train, [])["fingerprint"],
        study=study,
        trial=trial,
        params=params or {},
        test={},
        versions=library_versions(),
    )
    affine = Preprocess(*(torch.from_numpy(a) for a in (shift, scale, offset) if a is not None))
    return LoadedModel(header, module.cpu().eval(), affine)


def save(model: LoadedModel, path: Path) -> Path:
    """Write ``model`` as ``model.safetensors`` at ``path`` (a file name, or a folder to put it in)."""
    target = path / "model.safetensors" if path.is_dir() else path
    p = model.preprocess
    save_bundle(target, model.module, model.header, p.shift.numpy(), p.scale.numpy(), p.offset.numpy())
    return target
