"""Simple baselines beside the deep model: logistic regression or gradient-boosted trees trained on the same bulk
lines and genes, applied to the cells directly (no transfer, no cell label). They answer the user's first question
about a run: did deep transfer help on these data? Both models are scored on the same held-out bulk test lines, and on
the cells wherever labels exist."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import anndata as ad
import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from .._utils import batch_slices, gene_positions
from ..data.bulkdata import BulkData
from ..data.features import BLOCK, CellFeatures, model_features, row_standardise
from ..model.metrics import ranking_metric

__all__ = ["BASELINES", "FEATURE_SPACES", "BaselineKind", "BaselineResult", "FeatureSpace", "baseline_predictions",
           "feature_space", "make_classifier"]

BaselineKind = Literal["logistic", "gbt", "none"]
FeatureSpace = Literal["profile", "model"]
BASELINES: tuple[str, ...] = get_args(BaselineKind)
FEATURE_SPACES: tuple[str, ...] = get_args(FeatureSpace)


@dataclass
class BaselineResult:
    """A baseline's per-cell probabilities and its AUROC on the held-out bulk test lines."""

    kind: BaselineKind
    prob: np.ndarray          # per cell
    bulk_test_auroc: float    # held-out bulk lines, comparable with the bulk model's


def make_classifier(kind: BaselineKind, seed: int):
    """The unfitted scikit-learn classifier of a baseline kind (not `none`)."""
    if kind == "logistic":  # strong L2: far more genes than lines
        return LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced")
    if kind == "gbt":  # unweighted: class weights make sklearn bin features by weighted percentiles (slow)
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=seed)
    raise ValueError(f"unknown baseline '{kind}': choose one of {', '.join(BASELINES)}")


def baseline_predictions(kind: BaselineKind, bulk: BulkData, cells: ad.AnnData, *, genes: list[str],
                         seed: int = 0, features: FeatureSpace = "profile", drug: int = 0) -> BaselineResult | None:
    """Fit on the bulk training + validation lines measured for the drug in column `drug`, score its test lines,
    predict every cell block by block (the sparse matrix is never densified whole). features: `profile` (the
    pipeline's baseline): each profile z-scored across `genes`; `model`: the deep model's features, i.e. also each
    gene standardised within its own domain (bulk fitting lines; the sample's cells), to tell the feature space's
    effect from the model's."""
    if kind == "none":
        return None
    y = bulk.labels[:, drug]
    fit, test = ~np.isnan(y) & (bulk.split != "test"), ~np.isnan(y) & (bulk.split == "test")
    x_fit, x_test, cell_blocks = feature_space(features, bulk.expression(genes), fit, test=test, cells=cells, genes=genes)
    clf = make_classifier(kind, seed).fit(x_fit, y[fit].astype(int))
    test_auroc = ranking_metric(roc_auc_score, y[test].astype(int), clf.predict_proba(x_test)[:, 1])
    prob = np.concatenate([clf.predict_proba(block)[:, 1] for block in cell_blocks])
    return BaselineResult(kind=kind, prob=prob.astype(np.float32), bulk_test_auroc=test_auroc)


def feature_space(kind: FeatureSpace, bulk_x, fit: np.ndarray, *, test: np.ndarray, cells: ad.AnnData,
                  genes: list[str]):
    """Bulk fitting rows, bulk test rows (masks `fit`, `test`) and a generator of cell blocks in one feature space."""
    cols = gene_positions(cells.var_names, genes)
    if kind == "model":
        x_fit, stats = model_features(bulk_x[fit])
        cell_features = CellFeatures(cells.X, cols)
        return x_fit, model_features(bulk_x[test], stats)[0], (cell_features.numpy(idx) for idx in cell_features.blocks())
    if kind != "profile":
        raise ValueError(f"unknown feature space '{kind}': choose one of {', '.join(FEATURE_SPACES)}")
    x = row_standardise(bulk_x)
    matrix = sp.csr_matrix(cells.X) if sp.issparse(cells.X) else np.asarray(cells.X)
    blocks = (row_standardise(matrix[rows][:, cols]) for rows in batch_slices(cells.n_obs, BLOCK))
    return x[fit], x[test], blocks
