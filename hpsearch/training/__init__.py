"""The MLP, its trainer, K fold-models side by side, evaluation, metrics and cross-validation."""

from hpsearch.training.cv import CVResult, Split, cross_validate, make_splits, summarize
from hpsearch.training.evaluate import as_tensors, describe_device, evaluate, resolve_device
from hpsearch.training.folds import fit_folds, fit_stacked, plan_waves, trains_stacked
from hpsearch.training.metrics import classification_metrics
from hpsearch.training.model import StackedMLP, build_mlp, count_macs, count_params, layer_sizes
from hpsearch.training.process import training_settings
from hpsearch.training.trainer import EpochCallback, Trainer, fit, steps_per_epoch

__all__ = [
    "CVResult",
    "EpochCallback",
    "Split",
    "StackedMLP",
    "Trainer",
    "as_tensors",
    "build_mlp",
    "classification_metrics",
    "count_macs",
    "count_params",
    "cross_validate",
    "describe_device",
    "evaluate",
    "fit",
    "fit_folds",
    "fit_stacked",
    "layer_sizes",
    "make_splits",
    "plan_waves",
    "resolve_device",
    "steps_per_epoch",
    "summarize",
    "training_settings",
    "trains_stacked",
]
