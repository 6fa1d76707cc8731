"""A final-test model as ONNX in onnxruntime, held to ``predict_proba`` on its study's whole test split.

``python -m bench.onnx_check FOLDER --storage STUDY`` exports the model final-test wrote to FOLDER
(a single MLP or a fold-ensemble of an image model), runs the graph in onnxruntime on every test
row of the study's data, and prints the largest difference from the bundle's probabilities, the
share of rows on which both pick the same class, and the graph's test accuracy.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

from hpsearch.data import load_split
from hpsearch.store import load_study, storage_url, stored_run
from hpsearch.training.bundle import load_bundle
from hpsearch.training.export import to_onnx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="final-test's folder (or its model.safetensors)")
    parser.add_argument("--storage", required=True, help="the study's file or URL")
    args = parser.parse_args(argv)
    model = load_bundle(args.folder)
    defn, _ = stored_run(load_study(storage_url(args.storage), None))
    _, test = load_split(defn.data)
    raw = test.x * np.float32(model.header.input.pixel_max)
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "model.onnx"
        to_onnx(model, graph)
        session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        [onnx] = session.run(["probabilities"], {"x": raw.astype(np.float32)})
    torch_proba = model.predict_proba(raw)
    same = float((onnx.argmax(axis=1) == torch_proba.argmax(axis=1)).mean())
    accuracy = float((onnx.argmax(axis=1) == test.y).mean())
    print(f"{len(test.y)} test rows: max |onnx - predict_proba| = {np.abs(onnx - torch_proba).max():.2e}; "
          f"same class on {same:.4f} of rows; the graph's test accuracy {accuracy:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
