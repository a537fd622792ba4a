"""Classification metrics shared by bulk training, the transfer, the baselines and the evaluation."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

__all__ = ["binary_metrics", "ranking_metric"]


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
