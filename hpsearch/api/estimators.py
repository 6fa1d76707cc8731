"""``hpsearch.MLPClassifier``: one MLP of fixed settings as a scikit-learn classifier, trained by hpsearch's trainer.

``fit`` reads ``X`` as a table (``api.inputs``) and trains with final-test's retrain (``analysis.refit``):
the trainer, seeds and per-fold preprocessing every trial of a study uses, so the same rows, settings
and ``random_state`` give the weights ``hpsearch final-test`` would retrain. The fitted model is the
``LoadedModel`` a bundle loads as: ``to_bundle`` writes it, ``hpsearch.load_model`` reads it back, and
both predict alike.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any, cast, get_args

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from hpsearch.analysis.refit import refit, save
from hpsearch.api.inputs import class_names, new_rows, training_rows
from hpsearch.config import SEARCHABLE, ClassWeight, Device, TrainConfig
from hpsearch.config.domains import check_train
from hpsearch.data.arrays import from_frame
from hpsearch.errors import ConfigError, HpsearchError
from hpsearch.training import resolve_device

DEVICES: tuple[str, ...] = get_args(Device)
_DEFAULT = TrainConfig()  # the [train] defaults, the estimator's too
_SETTINGS = tuple(f.name for f in fields(TrainConfig) if f.name in SEARCHABLE and f.name != "class_weight")


class MLPClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn has no type hints
    """An MLP classifier of fixed hyperparameters, trained by hpsearch's trainer on all rows given to ``fit``.

    The arguments are the ``[train]`` settings of a study definition (see ``TrainConfig``), plus:

    Args:
        class_weight: None (every row alike), ``"balanced"`` (class c weighs n / (C * n_c)) or a dict
            {label: weight} (a label left out weighs 1), in the training loss only.
        device: ``auto`` (a GPU when torch sees one), ``cpu`` or ``cuda``.
        random_state: the seed of the weights, the batch order and dropout (an int; None: drawn from
            numpy's global generator, as scikit-learn's estimators do).

    Attributes:
        classes_: the labels, sorted; ``predict`` returns them.
        n_features_in_, feature_names_in_: the columns ``fit`` saw (names: a DataFrame's).
        model_: the trained model (``hpsearch.training.bundle.LoadedModel``): ``.module`` is the MLP.
        seed_: the seed it was trained with.
    """

    def __init__(
        self,
        depth: int = _DEFAULT.depth,
        width: int = _DEFAULT.width,
        optimizer: str = _DEFAULT.optimizer,
        lr: float = _DEFAULT.lr,
        lr_schedule: str = _DEFAULT.lr_schedule,
        momentum: float = _DEFAULT.momentum,
        weight_decay: float = _DEFAULT.weight_decay,
        dropout: float = _DEFAULT.dropout,
        input_dropout: float = _DEFAULT.input_dropout,
        label_smoothing: float = _DEFAULT.label_smoothing,
        class_weight: str | dict[Any, float] | None = None,
        batch_size: int = _DEFAULT.batch_size,
        epochs: int = _DEFAULT.epochs,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.depth = depth
        self.width = width
        self.optimizer = optimizer
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.batch_size = batch_size
        self.epochs = epochs
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train on every row of ``X`` (an array, or a DataFrame with text columns and missing values) and ``y``.

        Raises:
            ValueError: rows or labels scikit-learn refuses, a column unfit to be a feature, or a single class.
            ConfigError: a setting out of its domain, or a training loss that became NaN or infinite.
        """
        frame, codes = training_rows(self, X, y)
        seed = seed_of(self.random_state)
        cfg = self._train_config(seed)
        try:
            train = from_frame(frame, codes, class_names(self.classes_))
        except HpsearchError as e:
            raise ValueError(str(e)) from None
        self.model_ = refit(train, cfg)
        self.seed_ = seed
        return self

    def _train_config(self, seed: int) -> TrainConfig:
        """The TrainConfig of these arguments and ``seed``, checked against the domains of a definition's [train].

        Raises:
            ConfigError: naming every setting out of its domain.
        """
        given = {name: getattr(self, name) for name in _SETTINGS}
        cfg = replace(
            _DEFAULT,
            **given,
            class_weight=_class_weights(self.class_weight, self.classes_),
            seed=seed,
            device=resolve_device(self.device) if self.device in DEVICES else self.device,
        )
        problems: list[str] = []
        check_device(self.device, problems)
        check_train(cfg, problems)
        if problems:
            raise ConfigError(f"{type(self).__name__}: " + "; ".join(problems))
        return cfg

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (rows, classes) in the order of ``classes_``."""
        rows = new_rows(self, X)
        try:
            proba: np.ndarray = self.model_.predict_proba(rows)
        except HpsearchError as e:
            raise ValueError(str(e)) from None
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row."""
        proba = self.predict_proba(X)  # first: it says when fit has not run
        chosen: np.ndarray = self.classes_[proba.argmax(axis=1)]
        return chosen

    def to_bundle(self, path: str | Path) -> Path:
        """Write the model as ``model.safetensors`` (``path``: a file, or a folder to put it in); returns the file.

        ``hpsearch.load_model`` reads it back (no code runs), and ``hpsearch predict`` and ONNX export take it;
        its ``predict`` returns the labels as text (``str`` of ``classes_``).
        """
        check_is_fitted(self)
        return save(self.model_, Path(path))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # a missing value is imputed, by the median of its column on the rows fit saw (data.preprocess)
        tags.input_tags.allow_nan = True
        return tags


def check_device(device: str, problems: list[str]) -> None:
    """Append the problem of a ``device`` argument that is not ``auto``, ``cpu`` or ``cuda``."""
    if device not in DEVICES:
        problems.append(f"device must be one of {', '.join(DEVICES)}, but got {device!r}")


def seed_of(random_state: int | np.random.RandomState | None) -> int:
    """The training seed: an int as it is, else drawn from the generator (None: numpy's global one)."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _class_weights(given: str | dict[Any, float] | None, classes: np.ndarray) -> ClassWeight | tuple[float, ...]:
    """``class_weight`` as a TrainConfig holds it: "none", "balanced" or a weight per class of ``classes``.

    Raises:
        ConfigError: a dict naming a label that is not a class, or another kind of value.
    """
    if given is None:
        return "none"
    if isinstance(given, str):
        return cast(ClassWeight, given)  # "balanced", or a word the domain check refuses, naming the known ones
    if not isinstance(given, dict):
        raise ConfigError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}, but got {given!r}")
    unknown = [label for label in given if label not in set(classes.tolist())]
    if unknown:
        raise ConfigError(f"class_weight names {unknown[0]!r}, which is not a class (classes: {list(classes)})")
    return tuple(float(given.get(label, 1.0)) for label in classes.tolist())
