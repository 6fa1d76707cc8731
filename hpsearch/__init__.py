"""hpsearch: MLP hyperparameter search with Optuna, every trial scored by K-fold cross-validation."""

__version__ = "0.1.0"
