"""``hpsearch predict`` and ``hpsearch export``: run the tested model on new data, or hand it to ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpsearch.cli.common import Debug, app, guarded, stdout


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="model.safetensors written by final-test, or its folder.")],
    data: Annotated[
        Path, typer.Argument(help="CSV/Parquet/NPZ table with the model's feature columns, IDX images or NPZ images.")
    ],
    out: Annotated[Path | None, typer.Option(help="CSV file to write (default: stdout).")] = None,
    debug: Debug = False,
) -> None:
    """Predict each row of DATA: a CSV of the predicted class name and the probability of every class."""

    def run() -> None:
        from hpsearch.api import predict as run_predict

        frame = run_predict(model, data, out=out)
        if out is None:
            stdout.out(frame.to_csv(index=False), end="", highlight=False)
        else:
            stdout.print(f"wrote {len(frame)} predictions to {out}", markup=False)

    guarded(debug, run)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="model.safetensors written by final-test, or its folder.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    debug: Debug = False,
) -> None:
    """Export the model as ONNX: raw rows in (a table's columns by name; the preprocessing is in the graph),
    class probabilities out."""

    def run() -> None:
        from hpsearch.api import export_onnx, load_model

        loaded = load_model(model)
        export_onnx(loaded, onnx)
        table = loaded.header.input.kind == "table"
        inputs = "one input per raw column, by name" if table else "input x: rows x features, raw"
        stdout.print(f"wrote {onnx} ({inputs}; output probabilities)", markup=False)

    guarded(debug, run)
