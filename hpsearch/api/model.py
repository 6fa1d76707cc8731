"""hpsearch from Python: the tested model, loaded, run on new data, exported to ONNX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hpsearch.data.inputs import read_inputs
from hpsearch.errors import ConfigError
from hpsearch.training.bundle import LoadedModel, load_bundle


def load_model(path: str | Path) -> LoadedModel:
    """Load the model bundle ``final_test`` wrote (``model.safetensors``, or its folder); runs no code from the file.

    Returns:
        ``.module`` (the MLP, logits), ``.predict(x)`` (class names) and ``.predict_proba(x)`` on
        raw rows (pixels as the data set stores them, or a DataFrame of a table's raw columns by
        name, missing values and unseen categories included: the model applies its own
        preprocessing), ``.header`` (what it is and where it came from).

    Raises:
        DataError: a missing file, or one that is not an hpsearch model bundle.
    """
    return load_bundle(Path(path))


def predict(model: str | Path | LoadedModel, data: str | Path, *, out: Path | None = None) -> pd.DataFrame:
    """Predict every row of a data file (a table with the model's feature columns, raw, IDX or NPZ images).

    Returns:
        One row per input row: ``row``, ``predicted`` (the class name) and ``p_<class>`` for each class.
        Written as CSV to ``out`` when given.

    Raises:
        DataError: a missing file, or data that do not fit the model (a missing feature column, text where
            the model reads numbers, an image size).
        ConfigError: ``out`` cannot be written.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    rows = read_inputs(Path(data), loaded.header.input)
    proba = loaded.predict_proba(rows)
    frame = pd.DataFrame({"row": range(len(rows)), "predicted": loaded.predict(rows)})
    frame = pd.concat([frame, pd.DataFrame(proba, columns=[f"p_{c}" for c in loaded.classes])], axis=1)
    if out is not None:
        try:
            frame.to_csv(out, index=False)
        except OSError as e:
            raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    return frame


def export_onnx(model: str | Path | LoadedModel, path: Path) -> Path:
    """Write the model as ONNX, output ``probabilities`` (rows, classes), the preprocessing in the graph.
    An image model's input is ``x`` (rows, pixels) of raw values, as ``predict`` takes them; a table
    model's, one (rows, 1) input per raw column, named by it: float for a numeric column (NaN where
    missing), string for a categorical one (an empty string where missing).

    Uses torch's current exporter (``torch.onnx.export(dynamo=True)``, which needs ``onnxscript``)
    and, for a table model's preprocessing, skl2onnx: ``pip install 'hpsearch[export]'``.

    Raises:
        ConfigError: an exporter is not installed, or ``path`` cannot be written.
    """
    from hpsearch.training.export import to_onnx

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    to_onnx(loaded, Path(path))
    return Path(path)
