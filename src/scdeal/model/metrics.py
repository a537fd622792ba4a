"""Metrics shared by bulk training, the transfer, the baselines and the evaluation: per drug column where
labels are lines × drugs (NaN unmeasured)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn import metrics as skm

__all__ = ["binary_metrics", "column_aurocs", "column_spearman", "ranking_metric"]


def ranking_metric(metric: Callable, y_true, score) -> float:
    """`metric(y_true, score)` (AUROC, AP), or NaN when `y_true` holds one class only (it is undefined)."""
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(metric(y_true, score))


def binary_metrics(y_true, prob, *, threshold: float = 0.5, predicted=None) -> dict[str, float]:
    """Threshold metrics on `predicted` (or prob ≥ threshold) and ranking metrics on `prob`.

    Returns:
        `n`, `n_sensitive`, `precision`, `recall`, `f1`, `auroc` and `ap` (NaN with one class).
    """
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob, dtype=float)
    pred = np.asarray(predicted).astype(int) if predicted is not None else (prob >= threshold).astype(int)
    return {
        "n": len(y_true), "n_sensitive": int(y_true.sum()),
        "precision": float(skm.precision_score(y_true, pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, pred, zero_division=0)),
        "auroc": ranking_metric(skm.roc_auc_score, y_true, prob),
        "ap": ranking_metric(skm.average_precision_score, y_true, prob),
    }


def column_aurocs(y: np.ndarray, scores: np.ndarray, *, min_per_class: int = 1) -> np.ndarray:
    """AUROC of each column of `scores` against the same column of `y` (1/0, NaN skipped), by the rank-sum
    statistic; NaN where a column has fewer than `min_per_class` lines of a class."""
    out = np.full(y.shape[1], np.nan)
    for d in range(y.shape[1]):
        valid = ~np.isnan(y[:, d])
        labels = y[valid, d]
        n_pos = int(labels.sum())
        n_neg = len(labels) - n_pos
        if min(n_pos, n_neg) >= min_per_class:
            ranks = rankdata(scores[valid, d])
            out[d] = (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out


def column_spearman(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column over its measured rows (NaN where fewer than three, or constant)."""
    out = np.full(target.shape[1], np.nan)
    for d in range(target.shape[1]):
        valid = ~np.isnan(target[:, d])
        if valid.sum() >= 3 and np.ptp(target[valid, d]) > 0 and np.ptp(predicted[valid, d]) > 0:
            out[d] = spearmanr(target[valid, d], predicted[valid, d]).statistic
    return out
