"""Per-cell calls from a transfer's result (threshold rules, sensitive / resistant / uncertain) and the numbers
reported beside them. No cell label is read."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ..data import keys
from ..errors import InputError
from ..model.orientation import rank_correlation
from ..model.transfer import THRESHOLD_RULES, DrugResult, ThresholdRule, sigmoid
from .baseline import BaselineResult
from .evaluate import CALLS

__all__ = ["PREDICTION_COLUMNS", "annotate", "call_labels", "compare_with_baseline", "log_odds", "otsu_threshold",
           "predictions_table", "sensitive_fraction_interval", "threshold_for"]

PREDICTION_COLUMNS = (keys.PROB, keys.CALL, keys.CLUSTER, keys.PROB_SD, keys.PROB_DIRECT, keys.PROB_BASELINE, keys.TRUST)
TEXT_COLUMNS = (keys.CALL, keys.CLUSTER, keys.TRUST)
PROB_FLOOR = 1e-7  # float32 probabilities resolve log-odds to about ±16


def threshold_for(rule: ThresholdRule, result: DrugResult, fixed: float) -> float:
    """Label threshold (a probability), from the probabilities and bulk evidence only (never cell labels):
    otsu: the split of the cells' log-odds into two groups (the default: a sample's sensitive and
    resistant cells separate wherever the ranking does, whatever prior the calibration carries);
    fixed: a probability; bulk_prevalence: the top fraction equal to the fraction of sensitive bulk
    validation lines."""
    if rule == "otsu":
        return otsu_threshold(result.prob)
    if rule == "fixed":
        return fixed
    if rule == "bulk_prevalence":
        return float(np.quantile(result.prob, 1 - result.source_prior))
    raise InputError(f"Unknown threshold rule '{rule}': choose one of {', '.join(THRESHOLD_RULES)}.")


def log_odds(prob: np.ndarray | float) -> np.ndarray:
    """log(p / (1 − p)), with p kept PROB_FLOOR away from 0 and 1."""
    p = np.clip(np.asarray(prob, np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
    return np.log(p) - np.log1p(-p)


def call_labels(member_probs: np.ndarray, threshold: float) -> np.ndarray:
    """sensitive / resistant by the threshold on the members' mean probability; uncertain where the members'
    spread reaches across it. The spread is measured in log-odds: calibrated probabilities crowd near 0 and
    1, where a probability spread would call every cell close to a low threshold uncertain."""
    prob = member_probs.mean(0)
    labels = np.where(prob >= threshold, "sensitive", "resistant").astype(object)
    distance = np.abs(log_odds(prob) - log_odds(threshold))
    labels[distance < log_odds(member_probs).std(0)] = "uncertain"
    return labels


def otsu_threshold(prob: np.ndarray, bins: int = 256) -> float:
    """The probability that splits the cells into the two groups of most between-group variance of their
    log-odds. Calibrated to a bulk prior of ~10–20 % sensitive lines, a whole sensitive population can lie
    below 0.05 in probability, yet apart from the resistant cells in log-odds."""
    return float(sigmoid(np.float64(otsu_split(log_odds(prob), bins))))


def otsu_split(values: np.ndarray, bins: int) -> float:
    """The value that maximises the between-group variance of the two groups it makes."""
    hist, edges = np.histogram(values, bins=bins, range=(float(np.min(values)), float(np.max(values)) + 1e-9))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist) / max(hist.sum(), 1)
    mean_low = np.cumsum(hist * centres) / np.maximum(np.cumsum(hist), 1)
    total_mean = (hist * centres).sum() / max(hist.sum(), 1)
    mean_high = (total_mean - weight * mean_low) / np.maximum(1 - weight, 1e-12)
    between = weight * (1 - weight) * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def annotate(cells: ad.AnnData, result: DrugResult, *, threshold: float, verdict: str,
             baseline: BaselineResult | None = None) -> None:
    """Write the predictions into `cells`, in place.

    Sets the following fields:
        `obs['prob_sensitive']` (ensemble mean), `obs['prob_sensitive_sd']` (ensemble spread),
        `obs['prob_sensitive_direct']` (the direct models, without transfer), `obs['predicted_label']`
        (sensitive / resistant / uncertain), `obs['trust']` (the run's verdict),
        `obs['prob_sensitive_baseline']` (with a baseline) and `obsm['X_scdeal']` (first member's embedding).
    """
    cells.obs[keys.PROB] = result.prob.astype(np.float32)
    cells.obs[keys.PROB_SD] = result.prob_sd.astype(np.float32)
    cells.obs[keys.PROB_DIRECT] = result.direct_prob.astype(np.float32)
    cells.obs[keys.CALL] = pd.Categorical(call_labels(result.member_probs, threshold), categories=list(CALLS))
    cells.obs[keys.TRUST] = pd.Categorical([verdict] * cells.n_obs)
    cells.obsm[keys.EMBEDDING] = result.embedding.astype(np.float32)
    if baseline is not None:
        cells.obs[keys.PROB_BASELINE] = baseline.prob


def predictions_table(cells: ad.AnnData) -> pd.DataFrame:
    """One row per cell: its id and each prediction column `annotate` set (labels as text)."""
    return pd.DataFrame({"cell_id": cells.obs_names,
                         **{c: cells.obs[c].astype(str).to_numpy() if c in TEXT_COLUMNS else cells.obs[c].to_numpy()
                            for c in PREDICTION_COLUMNS if c in cells.obs}})


def compare_with_baseline(bulk_test_auroc: float, prob: np.ndarray, baseline: BaselineResult | None) -> dict:
    """What a user needs to judge, without cell labels, whether deep transfer helped: both models on
    the same held-out bulk lines, and how far their per-cell rankings agree."""
    out = {"scdeal_bulk_test_auroc": float(bulk_test_auroc)}
    if baseline is not None:
        out |= {"baseline": baseline.kind, "baseline_bulk_test_auroc": baseline.bulk_test_auroc,
                "spearman_scdeal_vs_baseline": rank_correlation(prob, baseline.prob)}
    return out


def sensitive_fraction_interval(member_probs: np.ndarray, threshold: float, n_cells: int) -> dict:
    """Estimated fraction of sensitive cells: mean probability, with a 95 % interval from the ensemble
    spread and the binomial sampling of cells, and the fraction called sensitive."""
    per_member = member_probs.mean(1)
    mean = float(per_member.mean())
    sd = float(np.sqrt(per_member.var() + mean * (1 - mean) / max(n_cells, 1)))
    labelled = float((member_probs.mean(0) >= threshold).mean())
    return {"sensitive_fraction_mean_prob": mean, "sensitive_fraction_ci95": [max(0.0, mean - 1.96 * sd),
                                                                            min(1.0, mean + 1.96 * sd)],
            "sensitive_fraction_labelled": labelled}
