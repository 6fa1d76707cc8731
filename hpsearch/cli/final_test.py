"""``hpsearch final-test``: retrain the chosen trial and score it once on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hpsearch.cli.common import Debug, ModelsOption, StorageOption, StudyNameOption, app, err, guarded, stdout
from hpsearch.config import Device


@app.command("final-test")
def final_test(
    which: Annotated[str, typer.Argument(help="best, simplest (fewest params within 1 SE), or trial number.")] = "best",
    storage: StorageOption = "sqlite:///study.db",
    study_name: StudyNameOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default: reports/<study-name>/final-test/).")] = None,
    device: Annotated[Device, typer.Option(help="auto takes a GPU when torch sees one.")] = "auto",
    data: Annotated[
        Path | None, typer.Option(help="Where the study's data are now, if they moved (their fingerprint must match).")
    ] = None,
    models: ModelsOption = None,
    debug: Debug = False,
) -> None:
    """Retrain the chosen trial on the whole training split and score it once on the test split (a study
    declared [final] model = "fold-ensemble": the chosen trial's fold-models, as the search trained them)."""
    from hpsearch.store import storage_url

    url = storage_url(storage)
    moved = str(data) if data is not None else None
    kept = str(models) if models is not None else None
    guarded(debug, lambda: _final_test(url, study_name, which, out, device, moved, kept))


def _final_test(
    url: str,
    study_name: str | None,
    which: str,
    out_dir: Path | None,
    device: str,
    data: str | None,
    models: str | None,
) -> None:
    from hpsearch.api import final_test

    final_test(
        url, study_name, which, out_dir=out_dir, device=device, data=data, models=models, console=stdout, warn=err
    )
