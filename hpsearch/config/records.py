"""The frozen configuration records (a study's Definition, one run's RunConfig) and the names their fields take."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Optimizer = Literal["sgd", "adam", "adagrad", "rmsprop"]
LrSchedule = Literal["constant", "cosine"]
Metric = Literal["accuracy", "precision", "recall", "f1", "balanced_accuracy", "roc_auc", "loss"]
ClassWeight = Literal["none", "balanced"]
Sampler = Literal["tpe", "random"]
Pruner = Literal["none", "median", "hyperband", "wilcoxon", "race"]
RaceRule = Literal["forgiving", "paired"]
FinalModel = Literal["retrain", "fold-ensemble"]
Device = Literal["auto", "cpu", "cuda"]
DatasetName = Literal["mnist-5k", "digits", "fashion-mnist", "mnist", "table"]  # what the command line reads
Shipped = Literal["default", "fashion-mnist", "fashion-mnist-quick", "fashion-mnist-hour"]  # hpsearch/studies/*.toml

OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)
CLASS_WEIGHTS: tuple[str, ...] = get_args(ClassWeight)
METRICS: tuple[str, ...] = get_args(Metric)
METRIC_NAMES = tuple(m for m in METRICS if m != "loss")  # what people read and report
FIGURES = ("loss", *METRIC_NAMES)  # what a fold stores: the loss first, then the metrics (roc_auc: two classes)
TWO_CLASS_ONLY = ("roc_auc",)  # metrics of two classes only: a fold of more classes stores none
INT_FIELDS = ("depth", "width", "batch_size", "epochs")  # TrainConfig fields that are whole numbers
SAMPLERS: tuple[str, ...] = get_args(Sampler)
PRUNERS: tuple[str, ...] = get_args(Pruner)
RACE_RULES: tuple[str, ...] = get_args(RaceRule)
FINAL_MODELS: tuple[str, ...] = get_args(FinalModel)
IN_MEMORY = "arrays"  # the data set of a study fit on arrays in memory (hpsearch.MLPSearchCV): nothing to load
DATASETS: tuple[str, ...] = (*get_args(DatasetName), IN_MEMORY)
SHIPPED: tuple[str, ...] = get_args(Shipped)
BUNDLED = ("mnist-5k", "digits")  # data sets a package ships: no path of the user's
OFFICIAL_SPLIT = ("fashion-mnist", "mnist")  # data sets with a test split of their own: no hold-out
TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".npz")  # table files
COLUMN_LISTS = ("categorical", "numeric", "drop")  # DataConfig fields that name a table's columns
PICKLE_SUFFIXES = (".pkl", ".pkl.gz")  # the tutorials' MNIST pickle


def metric_names(n_classes: int | None) -> tuple[str, ...]:
    """The metrics of a problem of ``n_classes`` classes, in METRIC_NAMES' order (None: not known, all)."""
    return tuple(m for m in METRIC_NAMES if n_classes in (None, 2) or m not in TWO_CLASS_ONLY)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    dataset: str = "mnist-5k"  # one of DATASETS; "mnist" and "table" need a path
    path: str | None = None  # a file or folder of the user's; None: the data set's own place
    target: str | None = None  # label column of a table file
    test_size: float = 0.2  # hold-out fraction where the data set has no official test split
    # the hold-out's seed: a property of the data, not of the search, so that studies of one data
    # set over study seeds 0..4 share one test split and "the test split is touched once" holds
    # across them (studies stored before it existed cut their hold-out from the study seed)
    split_seed: int = 0
    # a table's column naming each row's group (patient, session, user): every group's rows stay on one
    # side of the hold-out and of every fold, and the column is not a feature; None: no groups
    groups: str | None = None
    # a table's columns by name, read as categories (one-hot) or as numbers whatever the training
    # split suggests; drop: columns that are not features (identifiers, notes)
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    # a categorical column with more distinct values on the training rows is refused: one-hot
    # columns for hundreds of values that each appear a few times teach an MLP nothing but noise
    max_categories: int = 50


@dataclass(frozen=True, kw_only=True)
class CVConfig:
    folds: int = 5  # K of K-fold; 5 or 10 in practice
    seed: int = 0  # the study seed: one split for every trial, derived from it
    # R of R x K repeated K-fold: R differently shuffled K-fold splits, R x K fold-models per trial, all
    # of them paired scores in the t-test and the one-SE rule; repeat 0 is the split of repeats = 1
    repeats: int = 1


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    depth: int = 2  # hidden layers
    width: int = 128  # units per hidden layer
    optimizer: Optimizer = "adam"  # gradient descent variant, each with its learning rate
    lr: float = 1e-3  # learning rate
    # "cosine": the rate of epoch e is lr * (1 + cos(pi * e / epochs)) / 2, torch's
    # CosineAnnealingLR(T_max=epochs) stepped once an epoch, so the last epochs take small steps
    lr_schedule: LrSchedule = "constant"
    momentum: float = 0.9  # SGD's momentum; the other optimizers ignore it
    weight_decay: float = 0.0  # L2 penalty, applied by the optimizer
    dropout: float = 0.0  # dropout after each hidden ReLU
    # dropout on the input features while training: Srivastava et al. (JMLR 2014) drop 20% of
    # MNIST's pixels besides 50% of the hidden units
    input_dropout: float = 0.0
    # the training target puts this share of its mass evenly on every class (Szegedy et al. 2016;
    # torch's F.cross_entropy(label_smoothing=...)); every reported loss stays plain cross-entropy
    label_smoothing: float = 0.0
    # "balanced": the training loss weighs class c by n / (C * n_c) over the model's own training rows
    # (scikit-learn's "balanced"), as F.cross_entropy(weight=...) does; every reported loss stays unweighted.
    # A tuple: class i's weight, fixed (hpsearch.MLPClassifier's class_weight dict; not in a definition)
    class_weight: ClassWeight | tuple[float, ...] = "none"
    batch_size: int = 64  # mini-batch size
    epochs: int = 10  # passes over the training rows, as in the course material
    seed: int = 0  # the study seed: fold k's weights, batch order and dropout derive from it and k
    device: str = "cpu"  # torch device; resolved from --device, never stored in a definition


# the training settings a definition may search in [space] (or fix in [train])
SEARCHABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("seed", "device"))


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """The sampler and every option it samples by, written out rather than left to Optuna's defaults."""

    name: Sampler = "tpe"  # Optuna's TPESampler, or RandomSampler
    startup_trials: int = 10  # tpe: trials sampled at random before the model guides the search
    multivariate: bool = True  # tpe: model the parameters jointly (Optuna 5's default; 4's was False)
    constant_liar: bool = True  # tpe: running trials count as bad, so workers that start together spread out
    ei_candidates: int = 24  # tpe: candidates drawn per parameter to pick the most promising from


@dataclass(frozen=True, kw_only=True)
class PrunerConfig:
    """The pruner and its settings: part of a study's identity, so every worker prunes by one rule."""

    name: Pruner = "median"  # what stops a trial early: an epoch rule, the race over folds, or none
    startup_trials: int = 5  # median: complete trials needed before it prunes
    warmup_epochs: int = 1  # median: epochs of every wave a trial always runs before it can be pruned
    # median: prune below this percentile of the complete trials' scores at the same epoch of the
    # same folds (50: the median; 25: only the bottom quarter)
    percentile: float = 50.0
    p_threshold: float = 0.1  # wilcoxon: prune when a trial is worse than the best at this p-value
    startup_steps: int = 2  # wilcoxon: folds a trial always trains before the test may stop it
    reduction_factor: int = 3  # hyperband: 1/reduction_factor of the trials go on at each rung
    # race: folds trained together per wave (a CPU's cores); after each wave but the last, a trial
    # the rule says cannot win stops; within a wave the median pruner above works on the epochs
    wave_folds: int = 2
    # race: when a trial cannot win: forgiving, the mean of its folds below the best's worst fold;
    # paired, below the best's mean on the same folds
    race_rule: RaceRule = "forgiving"


@dataclass(frozen=True, kw_only=True)
class FinalConfig:
    """The final model, declared before the search, so that the test split judges one model, once."""

    # retrain: the chosen trial's MLP retrained on the whole training split; fold-ensemble: the
    # chosen trial's K fold-models as they were trained in the search, their probabilities averaged
    model: FinalModel = "retrain"
    # fold-ensemble: the best complete trials whose fold-models are kept beside the study (others'
    # are removed as better trials complete); final-test of another trial trains them again
    keep: int = 3


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One searched entry of the space: a range (``low``..``high``) or a list of ``choices``."""

    name: str  # a TrainConfig field
    low: float | None = None
    high: float | None = None
    log: bool = False  # sample on a log scale
    step: float | None = None  # grid step of a range
    choices: tuple[Any, ...] | None = None


DEFAULT_SPACE: tuple[ParamSpec, ...] = (
    ParamSpec(name="depth", low=1, high=4),
    ParamSpec(name="width", low=32, high=1024, log=True),
    ParamSpec(name="optimizer", choices=OPTIMIZERS),
    ParamSpec(name="lr", low=1e-4, high=1e-1, log=True),
)


@dataclass(frozen=True, kw_only=True)
class Definition:
    """Everything that makes two runs the same study."""

    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    space: tuple[ParamSpec, ...] = DEFAULT_SPACE
    metric: Metric = "accuracy"  # the objective: its CV mean is maximised (loss: minimised; roc_auc: 2 classes)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    seed: int = 0  # the study seed; data, cv and train carry copies, each role derives its own stream

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.metric == "loss" else "maximize"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the definition, as stored on the study (no device)."""
        d = dataclasses.asdict(self)
        del d["train"]["device"]
        normal: dict[str, Any] = json.loads(json.dumps(d))  # tuples -> lists, as stored
        return normal


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One invocation of ``hpsearch study``: a definition plus where and how long to run it."""

    definition: Definition = field(default_factory=Definition)
    storage: str = "sqlite:///study.db"  # any Optuna storage URL
    study_name: str = "mnist-5k"  # defaults to the data set's name
    # a fold-ensemble's kept fold-models; None: beside an SQLite file, else ./hpsearch-models (store/models.py)
    models: str | None = None
    trials: int = 50  # finished (complete or pruned) trials the study should hold when the run ends
    timeout: float | None = None  # seconds; None: no limit
    device: Device = "auto"
    quiet: bool = False
