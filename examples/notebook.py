# %% [markdown]
# # hpsearch in a notebook
#
# A plain Python file in cells (`# %%`: VS Code, PyCharm and Jupytext open it as a notebook; `python
# examples/notebook.py` runs it top to bottom). Arrays in, a search scored by K-fold CV, its results as a
# DataFrame, the best model on new rows, and nested cross-validation for an honest estimate of the whole
# search. Tiny budgets (digits, 2 epochs, a few trials) so that it runs in seconds; a test runs it.

# %%
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score, train_test_split

import hpsearch

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)

# %% The search: the same study `hpsearch study` runs, on these arrays
small = {"width": {"low": 32, "high": 256, "log": True}, "lr": {"low": 1e-3, "high": 3e-2, "log": True}}
search = hpsearch.MLPSearchCV(
    space=small,
    params={"epochs": 2},
    n_trials=4,
    cv=3,
    random_state=0,
).fit(X_train, y_train)

# %% Every trial, in scikit-learn's keys and hpsearch's (the loss apart, each fold's figures, why a trial stopped)
results = pd.DataFrame(search.cv_results_)
print(results[["trial", "state", "param_width", "param_lr", "mean_test_score", "std_test_score", "rank_test_score"]])
print("best:", search.best_params_, "simplest within one SE:", search.simplest_index_)

# %% The best model, retrained on every training row, on rows it has not seen
print("predicted", search.best_estimator_.predict(X_test[:8]), "true", y_test[:8])
print("held-out accuracy:", round(search.score(X_test, y_test), 4))

# %% Nested CV: the whole search, judged on rows it never saw
inner = hpsearch.MLPSearchCV(space=small, params={"epochs": 2}, n_trials=2, cv=2, random_state=0)
outer = cross_val_score(inner, X_train, y_train, cv=3)
half = 2 * outer.std(ddof=1) / np.sqrt(len(outer))  # about a 95% interval; `hpsearch nested` uses Student's t
print(
    f"the procedure's accuracy: {outer.mean():.4f} +/- {half:.4f}; the best trial's inner CV: {search.best_score_:.4f}"
)
