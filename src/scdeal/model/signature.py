"""Drug signatures from bulk lines, scored on cells: the transfer's signature anchor.

A drug's signature is the mean expression profile of its sensitive training lines minus that of its
resistant ones, each profile z-scored across the genes used (the infinitely regularised limit of a
linear discriminant). A cell's score is its own profile's projection on the signature. It reads bulk
labels only, has no weights to fit, and compares each profile with itself, so it is robust to the
bulk → single-cell shift where a deep source model's cell ranking can point either way while ranking
bulk lines well.

The model features are `(profile − mean) / sd` per gene and domain (`data.features`), so a profile is
`features · sd + mean`; scores are computed from model features and each domain's gene sd, without
keeping a second copy of either matrix. Nothing here reads a cell label.
"""
from __future__ import annotations

import numpy as np

from ..data.features import CellFeatures

__all__ = ["class_mean_signature", "signature_scores"]


def class_mean_signature(features: np.ndarray, labels: np.ndarray, gene_sd: np.ndarray) -> np.ndarray:
    """Drugs × genes: mean profile of the sensitive lines minus that of the resistant lines.

    Args:
        features: Lines × genes model features of the bulk lines (one row per draw: a bootstrap's
            repeated lines count as often as drawn).
        labels: Per line 1 sensitive / 0 resistant, or lines × drugs with NaN where unmeasured.
        gene_sd: The bulk lines' gene sd the features were standardised with.
    """
    y = np.asarray(labels, np.float64).reshape(len(features), -1)
    sensitive, resistant = (y == 1), (y == 0)
    weights = sensitive / np.maximum(sensitive.sum(0), 1) - resistant / np.maximum(resistant.sum(0), 1)
    return (weights.T @ features.astype(np.float64)) * gene_sd


def signature_scores(features: CellFeatures, signature: np.ndarray) -> np.ndarray:
    """Each cell's projection on each drug's signature (cells × drugs; one column per row of `signature`),
    up to a constant per drug."""
    weights = (signature * features.sd).T.astype(np.float32)
    return np.concatenate([features.numpy(rows) @ weights for rows in features.blocks()]) if features.n else \
        np.zeros((0, len(signature)), np.float32)
