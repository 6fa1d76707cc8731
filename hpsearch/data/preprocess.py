"""A table's preprocessing: one scikit-learn ColumnTransformer, fitted on training rows and nothing else.

Numeric columns: ``SimpleImputer(strategy="median")`` then ``StandardScaler``. Categorical
columns: ``SimpleImputer`` (a missing text becomes the category ``"(missing)"``: that a value
is missing may itself tell classes apart) then ``OneHotEncoder(handle_unknown="ignore")``,
which encodes a category its fitted rows never held as all zeros. Cross-validation fits one
per fold, on the fold's training rows; final-test fits one on the whole training split; the
test split is never fitted on.

The model bundle stores a fitted one as numbers and names (``Fitted``: no pickle) and rebuilds
it for ``predict`` and ONNX as ``Fitted.frozen``: imputers of the stored values as constants and
an encoder of the stored categories, both set through their constructors; the scaling becomes
the bundle's affine input layer (``Fitted.affine``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from hpsearch.data.table import FILLED, MISSING, Columns, Table


def preprocessing(columns: Columns) -> ColumnTransformer:
    """The unfitted preprocessing of a table whose columns are read as ``columns`` says."""
    steps: list[tuple[str, Pipeline, list[str]]] = []
    if columns.numeric:
        impute = SimpleImputer(strategy="median", keep_empty_features=True)  # a fold may lack a column's values
        steps.append(("numeric", Pipeline([("impute", impute), ("scale", StandardScaler())]), list(columns.numeric)))
    if columns.categorical:
        steps.append(("categorical", _encoder(OneHotEncoder(handle_unknown="ignore")), list(columns.categorical)))
    return ColumnTransformer(steps, sparse_threshold=0.0)


def _encoder(onehot: OneHotEncoder) -> Pipeline:
    onehot.set_params(sparse_output=False)
    impute = SimpleImputer(missing_values=MISSING, strategy="constant", fill_value=FILLED)
    return Pipeline([("impute", impute), ("onehot", onehot)])


def fit(table: Table, rows: np.ndarray | None = None) -> ColumnTransformer:
    """The table's preprocessing fitted on ``rows`` of it (every row when None), and on nothing else."""
    return preprocessing(table.columns).fit(table.frame if rows is None else table.frame.iloc[rows])


def inputs(fitted: ColumnTransformer, table: Table, rows: np.ndarray | None = None) -> np.ndarray:
    """The model's float32 inputs: ``fitted`` applied to ``rows`` of ``table`` (every row when None),
    zero-padded to ``table.n_inputs`` columns: a fold whose training rows lack a category of the
    training split encodes one column fewer, and its model never sees a value in the padding."""
    out = fitted.transform(table.frame if rows is None else table.frame.iloc[rows])
    padded = np.zeros((len(out), table.n_inputs), dtype=np.float32)
    padded[:, : out.shape[1]] = out
    return padded


@dataclass(frozen=True, eq=False)
class Fitted:
    """A fitted preprocessing as numbers and names, as the model bundle stores it."""

    columns: Columns
    median: np.ndarray  # float64 per numeric column: what a missing number becomes
    mean: np.ndarray  # float64 per numeric column: StandardScaler's mean_
    scale: np.ndarray  # float64 per numeric column: StandardScaler's scale_
    categories: tuple[tuple[str, ...], ...]  # per categorical column: its one-hot categories, in output order

    @classmethod
    def of(cls, fitted: ColumnTransformer, columns: Columns) -> Fitted:
        """What ``fitted`` (a ``fit`` of ``preprocessing(columns)``) learned."""
        empty = np.zeros(0)
        numeric = fitted.named_transformers_["numeric"] if columns.numeric else None
        onehot = fitted.named_transformers_["categorical"]["onehot"] if columns.categorical else None
        return cls(
            columns=columns,
            median=empty if numeric is None else np.asarray(numeric["impute"].statistics_, dtype=np.float64),
            mean=empty if numeric is None else np.asarray(numeric["scale"].mean_, dtype=np.float64),
            scale=empty if numeric is None else np.asarray(numeric["scale"].scale_, dtype=np.float64),
            categories=() if onehot is None else tuple(tuple(str(c) for c in cats) for cats in onehot.categories_),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each numeric column's median, mean and scale, each categorical column's categories."""
        numbers = zip(self.columns.numeric, self.median.tolist(), self.mean.tolist(), self.scale.tolist(), strict=True)
        return {
            "numeric": {name: {"median": m, "mean": mu, "scale": s} for name, m, mu, s in numbers},
            "categorical": {name: list(c) for name, c in zip(self.columns.categorical, self.categories, strict=True)},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Fitted:
        numeric, categorical = dict(raw["numeric"]), dict(raw["categorical"])

        def stat(key: str) -> np.ndarray:
            return np.array([float(v[key]) for v in numeric.values()], dtype=np.float64)

        return cls(
            columns=Columns(tuple(map(str, numeric)), tuple(map(str, categorical))),
            median=stat("median"),
            mean=stat("mean"),
            scale=stat("scale"),
            categories=tuple(tuple(str(c) for c in cats) for cats in categorical.values()),
        )

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(shift, scale, offset)``, float32 per model input after ``frozen``: ``(x - shift) / scale - offset``
        standardizes a numeric input as the fitted StandardScaler did and leaves a one-hot input as it is.

        ``shift`` is the mean rounded to float32 and ``offset`` what that rounding left over, in scaled units:
        with the mean alone, a column of years (mean 2008.03, float32 steps of 1.2e-4 there) would lose a
        ten-thousandth of a standard deviation, which float64 training rows never did.
        """
        n = sum(len(c) for c in self.categories)
        mean, scale = np.concatenate([self.mean, np.zeros(n)]), np.concatenate([self.scale, np.ones(n)])
        shift = mean.astype(np.float32)
        offset = ((mean - shift.astype(np.float64)) / scale).astype(np.float32)
        return shift, scale.astype(np.float32), offset

    def frozen(self) -> ColumnTransformer:
        """Imputation and one-hot encoding as fitted, rebuilt from the stored values alone.

        Each numeric column's imputer is ``SimpleImputer(strategy="constant")`` of its stored
        median; the encoder is ``OneHotEncoder`` of the stored categories. Fitting them (on one row
        of those values) changes neither, so the result transforms as the fitted one did, up to the
        scaling, which ``affine`` applies after it.
        """
        steps: list[tuple[str, SimpleImputer | Pipeline, list[str]]] = [
            (f"impute {name}", SimpleImputer(strategy="constant", fill_value=float(m)), [name])
            for name, m in zip(self.columns.numeric, self.median, strict=True)
        ]
        if self.columns.categorical:
            onehot = OneHotEncoder(categories=[list(c) for c in self.categories], handle_unknown="ignore")
            steps.append(("categorical", _encoder(onehot), list(self.columns.categorical)))
        row = dict(zip(self.columns.numeric, self.median.tolist(), strict=True))
        row |= {name: cats[0] for name, cats in zip(self.columns.categorical, self.categories, strict=True)}
        return ColumnTransformer(steps, sparse_threshold=0.0).fit(pd.DataFrame([row]))
