"""The fold-models a fold-ensemble study keeps: the best complete trials', in Optuna's artifact store.

A study declared with ``[final] model = "fold-ensemble"`` will test the chosen trial's K
fold-models as they were trained in the search. Training them again at final-test would cost a
whole trial (K fold-models); writing them costs a file of their weights. So each trial that
completes among the ``[final] keep`` best so far writes its fold-models (``training.ensemble``'s
file) into an Optuna ``FileSystemArtifactStore`` and the trial records the artifact (Optuna's
``artifacts:`` system attribute); the files of trials pushed out of the best are removed, so the
store holds at most ``keep`` of them, however long the study runs. The store's folder is beside
an SQLite study file (``study.db.models/<study>``) or, for a database server, ``--models DIR``
(default ``hpsearch-models/<study>`` under the current folder; workers on several machines need a
folder they all reach).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import ConfigError
from hpsearch.store.urls import sqlite_path

FILENAME = "fold-models.safetensors"


def models_folder(url: str, study_name: str, folder: str | None = None) -> Path:
    """Where a study's kept fold-models live: ``folder`` (per study), beside an SQLite file, or ./hpsearch-models.

    Raises:
        ConfigError: an in-memory study, which has no place beside it.
    """
    if folder is not None:
        return Path(folder) / study_name
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(f"{path.name}.models") / study_name
    if url.startswith("sqlite:"):
        raise ConfigError("a fold-ensemble keeps its fold-models beside the study: give --storage a file or a server")
    return Path("hpsearch-models") / study_name


def keep_fold_models(
    trial: optuna.Trial, value: float, folder: Path, keep: int, *, maximize: bool, write: Callable[[Path], None]
) -> bool:
    """Store trial ``trial``'s fold-models (``write(path)`` writes their file) if its ``value`` is among the
    ``keep`` best of the complete trials; remove the files of those it pushes out. Whether it stored them."""
    study = trial.study
    sign = 1.0 if maximize else -1.0
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    ranked = sorted(complete, key=lambda t: -sign * float(t.value or 0.0))
    better = [t for t in ranked if sign * float(t.value or 0.0) >= sign * value]
    if len(better) >= keep:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(folder)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILENAME
        write(path)
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
    for pushed_out in ranked[keep - 1 :]:  # with this trial, the best keep - 1 others stay
        for meta in get_all_artifact_meta(pushed_out, storage=trial.storage):
            with contextlib.suppress(ArtifactNotFound, FileNotFoundError):
                store.remove(meta.artifact_id)
    return True


def fold_models_file(study: optuna.Study, trial: FrozenTrial, folder: Path, to: Path) -> Path | None:
    """Trial ``trial``'s kept fold-models, copied to the file ``to``; None when they were not kept (or are gone)."""
    store = FileSystemArtifactStore(folder) if folder.exists() else None
    storage = study._storage  # a FrozenTrial's artifacts are read through its study's storage, which Optuna keeps here
    for meta in get_all_artifact_meta(trial, storage=storage):
        if meta.filename == FILENAME and store is not None:
            try:
                download_artifact(artifact_store=store, file_path=str(to), artifact_id=meta.artifact_id)
            except (ArtifactNotFound, FileNotFoundError):
                continue
            return to
    return None
