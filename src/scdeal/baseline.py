"""Simple baselines beside the deep model: logistic regression or gradient-boosted trees trained on the
same bulk lines and genes, applied to the cells directly (no transfer, no cell label).

They answer the user's first question about a run: did deep transfer help on these data? Both models
are scored on the same held-out bulk test lines, and on the cells wherever labels exist.
"""
from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from .features import BLOCK
from .preprocess import row_standardise

BASELINES = ("logistic", "gbt", "none")


@dataclass
class BaselineResult:
    kind: str
    prob: np.ndarray          # per cell
    bulk_test_auroc: float    # held-out bulk lines, comparable with the bulk model's


def make_classifier(kind: str, seed: int):
    if kind == "logistic":  # strong L2: far more genes than lines
        return LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced")
    if kind == "gbt":  # unweighted: class weights make sklearn bin features by weighted percentiles (slow)
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=seed)
    raise ValueError(f"unknown baseline '{kind}': choose one of {', '.join(BASELINES)}")


def baseline_predictions(kind: str, bulk: ad.AnnData, cells: ad.AnnData, genes: list[str],
                         seed: int = 0) -> BaselineResult | None:
    """Fit on the bulk training + validation lines (each profile z-scored across `genes`), score the
    test lines, predict every cell block by block (the sparse matrix is never densified whole)."""
    if kind == "none":
        return None
    split = bulk.obs["split"].to_numpy()
    x = row_standardise(bulk[:, genes].X)
    y = bulk.obs["label"].to_numpy().astype(int)
    fit = split != "test"
    clf = make_classifier(kind, seed).fit(x[fit], y[fit])
    test_auroc = float(roc_auc_score(y[~fit], clf.predict_proba(x[~fit])[:, 1])) if len(set(y[~fit])) == 2 else float("nan")
    position = {g: i for i, g in enumerate(map(str, cells.var_names))}
    cols = np.array([position[g] for g in genes])
    matrix = sp.csr_matrix(cells.X) if sp.issparse(cells.X) else np.asarray(cells.X)
    prob = np.concatenate([clf.predict_proba(row_standardise(matrix[start:start + BLOCK][:, cols]))[:, 1]
                           for start in range(0, cells.n_obs, BLOCK)])
    return BaselineResult(kind=kind, prob=prob.astype(np.float32), bulk_test_auroc=test_auroc)
