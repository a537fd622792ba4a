"""Absolute drug efficacy: each drug's GDSC AUC (and LN_IC50 where measured) predicted from expression by a linear
kernel ridge.

GDSC's AUC is the area under the fitted viability curve over the screen's fixed concentration range, scaled to 0–1:
1 is no effect, lower kills more. Unlike a probability calibrated to each drug's rate of sensitive lines, it is on one
scale for every drug, so predictions can be compared across drugs. LN_IC50 (natural log of the IC50 in µM) is
predicted beside it from the same kernel; the screens' concentration ranges differ between drugs, so it is the
secondary figure.

- Features: each profile z-scored across the genes (as the GDSC table is), then each gene standardised with the bulk
  training lines' statistics, never the sample's own. A pseudo-bulk profile of cells then sits on the bulk lines'
  scale and keeps its absolute content; centring cells on their own sample would make the mean cell the average line.
- Profiles from another platform (single cells, their pseudo-bulk) are first given the bulk lines' distribution across
  genes (`bulk_shaped`: quantile matching to the lines' mean sorted profile): each gene keeps its rank in the profile,
  and the depth, dropout and log-of-counts shape of single-cell data no longer bend the linear model's input.
- Unmeasured (line, drug) pairs are filled with the model's own fit and refitted (EM rounds), instead of being read as
  the drug's mean.
- One penalty per response for every drug is chosen on the validation lines (mean squared error over drugs), then the
  model is refitted on every line outside the test split. Members refit on bootstrap draws of those lines; their
  spread is the uncertainty.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..data.features import apply_gene_stats, model_features, row_standardise
from .metrics import column_spearman

__all__ = ["ALPHAS", "RESPONSES", "EfficacyModel", "ResponseFit", "fit_efficacy", "match_quantiles"]

ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)   # ridge penalties of the kernel x·x' / genes
EM_ROUNDS = 5                          # refits with the unmeasured pairs filled by the previous fit
MIN_VAL_LINES = 10                     # a drug's validation Spearman needs this many measured lines
RESPONSES = {"auc": (0.0, 1.0), "ln_ic50": None}   # each predicted response and the range it is clipped to


@dataclass
class ResponseFit:
    """The kernel ridge of one response: coefficients of the full fit (member 0) and of each bootstrap member."""

    coef: np.ndarray             # (1 + members) × lines × drugs (a line a member did not draw has 0)
    mean: np.ndarray             # (1 + members) × drugs: mean measured response
    alpha: float
    val_spearman: np.ndarray     # per drug: Spearman of the fit on training lines with validation lines' response
    bounds: tuple[float, float] | None


@dataclass
class EfficacyModel:
    """A fitted response model: its genes and drugs, the training lines' features, gene statistics and mean sorted
    profile, and one kernel ridge per predicted response (`fits`: `auc`, and `ln_ic50` where it was given)."""

    drugs: list[str]
    genes: list[str]
    gene_mean: np.ndarray
    gene_sd: np.ndarray
    lines: np.ndarray            # training lines × genes, model features
    reference: np.ndarray        # the training lines' profiles (z-scored across genes), sorted, averaged
    fits: dict[str, ResponseFit]
    line_names: list[str]        # the training lines, in the rows of `lines`

    def line_correlations(self, profiles) -> np.ndarray:
        """Rows × training lines: the correlation of each profile's model features with each line's (across genes)."""
        return row_standardise(self.features(profiles)) @ row_standardise(self.lines).T / len(self.genes)

    def nearest_line_correlations(self) -> np.ndarray:
        """Per training line, its correlation with the most similar other line: how like some line a profile of
        the bulk platform is."""
        lines = row_standardise(self.lines)
        similarity = lines @ lines.T / len(self.genes)
        np.fill_diagonal(similarity, -np.inf)
        return similarity.max(1)

    @property
    def alpha(self) -> float:
        """The AUC model's ridge penalty."""
        return self.fits["auc"].alpha

    @property
    def val_spearman(self) -> np.ndarray:
        """Per drug: the AUC model's Spearman with validation lines' AUC."""
        return self.fits["auc"].val_spearman

    def features(self, profiles) -> np.ndarray:
        """Model features of expression profiles (rows × self.genes, log scale)."""
        return apply_gene_stats(row_standardise(profiles), self.gene_mean, self.gene_sd)

    def bulk_shaped(self, profiles) -> np.ndarray:
        """Profiles of another platform (rows × self.genes, any monotone scale) with the bulk lines' distribution
        across genes: each gene keeps its rank in its profile."""
        return match_quantiles(profiles, self.reference)

    def predict(self, profiles, *, members: bool = False, response: str = "auc") -> np.ndarray:
        """Rows × drugs predicted `response` of the full fit, or (1 + members) × rows × drugs with every member;
        AUC is clipped to its range 0–1 (a profile far from every line can take the linear model beyond it)."""
        fit = self.fits[response]
        kernel = linear_kernel(self.features(profiles), self.lines)
        out = kernel @ fit.coef[0] + fit.mean[0] if not members else \
            np.einsum("rl,mld->mrd", kernel, fit.coef) + fit.mean[:, None, :]
        return np.clip(out, *fit.bounds) if fit.bounds else out


def match_quantiles(profiles, reference: np.ndarray) -> np.ndarray:
    """Each row of `profiles` replaced by `reference` (sorted, one value per column) at the row's ranks; tied values
    share the mean of the reference over their ranks (so the zeros of a sparse profile become one low value)."""
    x = np.asarray(profiles, np.float64)
    low = rankdata(x, method="min", axis=1).astype(np.int64) - 1
    high = rankdata(x, method="max", axis=1).astype(np.int64)
    total = np.concatenate([[0.0], np.cumsum(reference, dtype=np.float64)])
    return ((total[high] - total[low]) / (high - low)).astype(np.float32)


def ridge_coef(eigen: tuple[np.ndarray, np.ndarray], y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ridge coefficients (lines × drugs) from the kernel's eigendecomposition, and each drug's mean (NaN
    where no line is measured, so its predictions are NaN), unmeasured pairs (NaN) filled by EM."""
    values, vectors = eigen
    with warnings.catch_warnings():  # a drug none of these lines measured
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(y, 0)
    centred = np.nan_to_num(y - mean)
    missing = np.isnan(y)
    for _ in range(EM_ROUNDS if missing.any() else 1):
        projected = vectors.T @ centred
        coef = vectors @ (projected / (values + alpha)[:, None])
        centred[missing] = (vectors @ (projected * (values / (values + alpha))[:, None]))[missing]
    return coef, mean


def eigen(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's eigenvalues (negative rounding errors set to 0) and eigenvectors."""
    values, vectors = np.linalg.eigh(kernel)
    return np.maximum(values, 0), vectors


def linear_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x·x' / genes between the rows of `a` and `b`."""
    return a.astype(np.float64) @ b.astype(np.float64).T / a.shape[1]


def choose_alpha(eigen_train, kernel_val: np.ndarray, *, y_train: np.ndarray, y_val: np.ndarray
                 ) -> tuple[float, np.ndarray]:
    """The penalty with the least mean squared error over drugs on the validation lines, and each drug's
    validation Spearman at it."""
    errors, scores = {}, {}
    for alpha in ALPHAS:
        coef, mean = ridge_coef(eigen_train, y_train, alpha)
        predicted = kernel_val @ coef + mean
        with warnings.catch_warnings():  # drugs no validation line measured
            warnings.simplefilter("ignore", RuntimeWarning)
            errors[alpha] = float(np.nanmean(np.nanmean((predicted - y_val) ** 2, 0)))
        scores[alpha] = column_spearman(y_val, predicted)
        scores[alpha][(~np.isnan(y_val)).sum(0) < MIN_VAL_LINES] = np.nan
    alpha = min(ALPHAS, key=lambda a: errors[a] if np.isfinite(errors[a]) else np.inf)
    return alpha, scores[alpha]


def fit_efficacy(expression: np.ndarray, auc: np.ndarray, split: np.ndarray, *, drugs: list[str], genes: list[str],
                 members: int, seed: int, ln_ic50: np.ndarray | None = None,
                 line_names: list[str] | None = None) -> EfficacyModel:
    """Fit the response model on lines × genes `expression` (log scale) and lines × drugs `auc` (and `ln_ic50`
    where given; NaN unmeasured): each response's penalty chosen on the `val` lines of `split`, then the full fit
    and `members` bootstrap fits on every line but the `test` ones. `line_names`: the lines' names (default: their
    row numbers)."""
    responses = {"auc": auc, **({"ln_ic50": ln_ic50} if ln_ic50 is not None and np.isfinite(ln_ic50).any() else {})}
    train, val, fit = split == "train", split == "val", split != "test"
    x_train, stats = model_features(expression[train])
    x_val = model_features(expression[val], stats)[0]
    eigen_train, kernel_val = eigen(linear_kernel(x_train, x_train)), linear_kernel(x_val, x_train)
    chosen = {name: choose_alpha(eigen_train, kernel_val, y_train=y[train], y_val=y[val])
              for name, y in responses.items()}
    x, stats = model_features(expression[fit])
    kernel = linear_kernel(x, x)
    rng = np.random.default_rng(seed)
    draws = [np.arange(len(x))] + [np.sort(rng.integers(0, len(x), len(x))) for _ in range(members)]
    coefs: dict[str, list] = {name: [] for name in responses}
    means: dict[str, list] = {name: [] for name in responses}
    for rows in draws:
        decomposition = eigen(kernel[np.ix_(rows, rows)])
        for name, y in responses.items():
            coef, mean = ridge_coef(decomposition, y[fit][rows], chosen[name][0])
            coefs[name].append(scatter_rows(coef, rows, len(x)))
            means[name].append(mean)
    fits = {name: ResponseFit(coef=np.stack(coefs[name]), mean=np.stack(means[name]), alpha=chosen[name][0],
                              val_spearman=chosen[name][1], bounds=RESPONSES[name]) for name in responses}
    reference = np.sort(row_standardise(expression[fit]), axis=1).mean(0)
    names = np.asarray(line_names if line_names is not None else [str(i) for i in range(len(split))])[fit]
    return EfficacyModel(drugs=list(drugs), genes=list(genes), gene_mean=stats[0], gene_sd=stats[1], lines=x,
                         reference=reference, fits=fits, line_names=[str(n) for n in names])


def scatter_rows(coef: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Coefficients of drawn lines (with repeats) summed onto the `n` training lines."""
    out = np.zeros((n, coef.shape[1]))
    np.add.at(out, rows, coef)
    return out
