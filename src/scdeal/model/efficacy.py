"""Absolute drug efficacy: each drug's GDSC AUC predicted from expression by a linear kernel ridge.

GDSC's AUC is the area under the fitted viability curve over the screen's fixed concentration range, scaled to 0–1:
1 is no effect, lower kills more. Unlike a probability calibrated to each drug's rate of sensitive lines, it is on one
scale for every drug, so predictions can be compared across drugs.

- Features: each profile z-scored across the genes (as the GDSC table is), then each gene standardised with the bulk
  training lines' statistics, never the sample's own. A pseudo-bulk profile of cells then sits on the bulk lines'
  scale and keeps its absolute content; centring cells on their own sample would make the mean cell the average line.
- Unmeasured (line, drug) pairs are filled with the model's own fit and refitted (EM rounds), instead of being read as
  the drug's mean.
- One penalty for every drug is chosen on the validation lines (mean squared error over drugs), then the model is
  refitted on every line outside the test split. Members refit on bootstrap draws of those lines; their spread is the uncertainty.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..data.features import apply_gene_stats, model_features, row_standardise
from .metrics import column_spearman

__all__ = ["ALPHAS", "EfficacyModel", "fit_efficacy"]

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)   # ridge penalties of the kernel x·x' / genes
EM_ROUNDS = 5                          # refits with the unmeasured pairs filled by the previous fit
MIN_VAL_LINES = 10                     # a drug's validation Spearman needs this many measured lines


@dataclass
class EfficacyModel:
    """A fitted AUC model: its genes and drugs, the training lines' features and gene statistics, and the
    kernel coefficients of the full fit (member 0) and of each bootstrap member."""

    drugs: list[str]
    genes: list[str]
    gene_mean: np.ndarray
    gene_sd: np.ndarray
    lines: np.ndarray            # training lines × genes, model features
    coef: np.ndarray             # (1 + members) × lines × drugs (a line a member did not draw has 0)
    drug_mean: np.ndarray        # (1 + members) × drugs: mean measured AUC
    alpha: float
    val_spearman: np.ndarray     # per drug: Spearman of the fit on training lines with validation lines' AUC

    def features(self, profiles) -> np.ndarray:
        """Model features of expression profiles (rows × self.genes, log scale)."""
        return apply_gene_stats(row_standardise(profiles), self.gene_mean, self.gene_sd)

    def predict(self, profiles, *, members: bool = False) -> np.ndarray:
        """Rows × drugs predicted AUC of the full fit, or (1 + members) × rows × drugs with every member; clipped to
        AUC's range 0–1 (a profile far from every line can take the linear model beyond it)."""
        kernel = linear_kernel(self.features(profiles), self.lines)
        if not members:
            return np.clip(kernel @ self.coef[0] + self.drug_mean[0], 0, 1)
        return np.clip(np.einsum("rl,mld->mrd", kernel, self.coef) + self.drug_mean[:, None, :], 0, 1)


def ridge_coef(kernel: np.ndarray, auc: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ridge coefficients (lines × drugs) and each drug's mean (NaN where no line is measured, so its
    predictions are NaN), unmeasured pairs (NaN) filled by EM."""
    with warnings.catch_warnings():  # a drug none of these lines measured
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(auc, 0)
    centred = np.nan_to_num(auc - mean)
    missing = np.isnan(auc)
    values, vectors = np.linalg.eigh(kernel)
    values = np.maximum(values, 0)
    for _ in range(EM_ROUNDS if missing.any() else 1):
        projected = vectors.T @ centred
        coef = vectors @ (projected / (values + alpha)[:, None])
        centred[missing] = (vectors @ (projected * (values / (values + alpha))[:, None]))[missing]
    return coef, mean


def linear_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x·x' / genes between the rows of `a` and `b`."""
    return a.astype(np.float64) @ b.astype(np.float64).T / a.shape[1]


def fit_efficacy(expression: np.ndarray, auc: np.ndarray, split: np.ndarray, *, drugs: list[str], genes: list[str],
                 members: int, seed: int) -> EfficacyModel:
    """Fit the AUC model on lines × genes `expression` (log scale) and lines × drugs `auc` (NaN unmeasured): the
    penalty chosen on the `val` lines of `split`, then the full fit and `members` bootstrap fits on every line but
    the `test` ones."""
    train, val, fit = split == "train", split == "val", split != "test"
    x_train, stats = model_features(expression[train])
    x_val = model_features(expression[val], stats)[0]
    kernel_train, kernel_val = linear_kernel(x_train, x_train), linear_kernel(x_val, x_train)
    errors, scores = {}, {}
    for alpha in ALPHAS:
        coef, mean = ridge_coef(kernel_train, auc[train], alpha)
        predicted = kernel_val @ coef + mean
        with warnings.catch_warnings():  # drugs no validation line measured
            warnings.simplefilter("ignore", RuntimeWarning)
            errors[alpha] = float(np.nanmean(np.nanmean((predicted - auc[val]) ** 2, 0)))
        scores[alpha] = column_spearman(auc[val], predicted)
        scores[alpha][(~np.isnan(auc[val])).sum(0) < MIN_VAL_LINES] = np.nan
    alpha = min(ALPHAS, key=lambda a: errors[a] if np.isfinite(errors[a]) else np.inf)
    x, stats = model_features(expression[fit])
    kernel, y = linear_kernel(x, x), auc[fit]
    rng = np.random.default_rng(seed)
    draws = [np.arange(len(x))] + [np.sort(rng.integers(0, len(x), len(x))) for _ in range(members)]
    coefs, means = [], []
    for rows in draws:
        coef, mean = ridge_coef(kernel[np.ix_(rows, rows)], y[rows], alpha)
        coefs.append(scatter_rows(coef, rows, len(x)))
        means.append(mean)
    return EfficacyModel(drugs=list(drugs), genes=list(genes), gene_mean=stats[0], gene_sd=stats[1], lines=x,
                         coef=np.stack(coefs), drug_mean=np.stack(means), alpha=alpha, val_spearman=scores[alpha])


def scatter_rows(coef: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Coefficients of drawn lines (with repeats) summed onto the `n` training lines."""
    out = np.zeros((n, coef.shape[1]))
    np.add.at(out, rows, coef)
    return out
