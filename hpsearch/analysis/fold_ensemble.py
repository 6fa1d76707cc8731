"""final-test of a study declared ``[final] model = "fold-ensemble"``: the chosen trial's K fold-models.

The members are the fold-models the search trained for the chosen trial, as it kept them
(``store/models.py``: the best complete trials'). For a trial whose fold-models were not kept
they are trained again from the study's split and seeds: the same models up to float rounding,
at the price of one whole trial, said in a warning. The ensemble is scored once on the test
split as the model file holds it: each member's probabilities of the raw test rows, averaged
(``training.ensemble.LoadedEnsemble``); its loss is the cross-entropy of that mean.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import nn

from hpsearch.analysis.final_record import document, record
from hpsearch.analysis.final_test import Chosen, FinalTest
from hpsearch.analysis.test_scores import scores_of
from hpsearch.data import fingerprint
from hpsearch.data.inputs import input_spec
from hpsearch.errors import ConfigError, TrainingDiverged
from hpsearch.store.models import fold_models_file
from hpsearch.training import cross_validate, make_splits, training_settings
from hpsearch.training.bundle import Header, load_bundle
from hpsearch.training.ensemble import LoadedEnsemble, Part, fold_parts

_log = logging.getLogger("hpsearch")


def test_fold_ensemble(chosen: Chosen, url: str, *, out: str = "") -> FinalTest:
    """Score the chosen trial's fold-ensemble once on the test split and record it on the study.

    Raises:
        HpsearchError: fold-models that diverge when trained again; a storage that cannot record.
    """
    parts = _members(chosen)
    train, test, spec = chosen.train, chosen.test, input_spec(chosen.data, chosen.train)
    header = Header.of(
        train,
        chosen.cfg,
        spec,
        fingerprint=fingerprint(train, test),
        study=chosen.study.study_name,
        trial=chosen.trial.number,
        params=dict(chosen.trial.params),
    )
    raw = test.table.frame if test.table is not None else test.x * np.float32(spec.pixel_max)
    with training_settings():
        proba = np.asarray(LoadedEnsemble(header, parts).predict_proba(raw), dtype=np.float64)
    picked = np.clip(proba[np.arange(len(test.y)), test.y], np.finfo(np.float64).tiny, None)
    row_loss = -np.log(picked)
    scores = scores_of(float(row_loss.mean()), proba.argmax(axis=1), proba, row_loss, test, seed=chosen.cfg.seed)
    entry = record(chosen.study, chosen.trial, chosen.cfg, scores, header.fingerprint, out, url, "fold-ensemble")
    doc = document(chosen.study.study_name, chosen.cfg, chosen.stored, scores, None, entry)
    test_figures = {"loss": doc["loss"]["test"], **doc["metrics"]["test"], "intervals": doc["intervals"]}
    header = replace(header, test=test_figures, versions=doc["versions"])
    members = nn.ModuleList(p.model for p in parts)
    return FinalTest(members, None, scores, doc, header, parts=parts)


def _members(chosen: Chosen) -> list[Part]:
    """The chosen trial's fold-models: as the search kept them, or trained again (with a warning)."""
    assert chosen.models is not None
    with tempfile.TemporaryDirectory() as tmp:
        kept = fold_models_file(chosen.study, chosen.trial, chosen.models, Path(tmp) / "fold-models")
        if kept is not None:
            loaded = load_bundle(kept)
            if isinstance(loaded, LoadedEnsemble):
                return loaded.parts
    _log.warning(
        "the fold-models of trial %d were not kept (the study keeps the best %d); training them again, "
        "a whole trial's time",
        chosen.trial.number,
        chosen.definition.final.keep,
    )
    cv = chosen.definition.cv
    splits = make_splits(chosen.train.y, cv, chosen.train.classes, chosen.train.groups)
    try:
        with training_settings():
            members = cross_validate(chosen.train, splits, chosen.cfg, keep_models=True).members
    except TrainingDiverged as e:
        raise ConfigError(f"training the fold-models of trial {chosen.trial.number} again diverged: {e}") from None
    assert members is not None
    spec = input_spec(chosen.data, chosen.train)
    return fold_parts(members, chosen.train, spec.pixel_max)
