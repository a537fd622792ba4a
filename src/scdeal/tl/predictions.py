"""Per-cell calls from a transfer's result, and the numbers reported beside them (no cell label is read)."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from ..model.orientation import rank_correlation
from ..model.transfer import TransferResult, call_labels
from .baseline import BaselineResult
from .evaluate import CALLS

__all__ = ["PREDICTION_COLUMNS", "annotate", "compare_with_baseline", "predictions_table",
           "sensitive_fraction_interval"]

PREDICTION_COLUMNS = ("prob_sensitive", "predicted_label", "cluster", "prob_sensitive_sd", "prob_sensitive_direct",
                      "prob_sensitive_baseline", "trust")
TEXT_COLUMNS = ("predicted_label", "cluster", "trust")


def annotate(cells: ad.AnnData, result: TransferResult, *, threshold: float, verdict: str,
             baseline: BaselineResult | None = None) -> None:
    """Write the predictions into `cells`, in place.

    Sets the following fields:
        `obs['prob_sensitive']` (ensemble mean), `obs['prob_sensitive_sd']` (ensemble spread),
        `obs['prob_sensitive_direct']` (the source models, without transfer), `obs['predicted_label']`
        (sensitive / resistant / uncertain), `obs['trust']` (the run's verdict),
        `obs['prob_sensitive_baseline']` (with a baseline) and `obsm['X_scdeal']` (first member's embedding).
    """
    cells.obs["prob_sensitive"] = result.prob.astype(np.float32)
    cells.obs["prob_sensitive_sd"] = result.prob_sd.astype(np.float32)
    cells.obs["prob_sensitive_direct"] = result.direct_prob.astype(np.float32)
    cells.obs["predicted_label"] = pd.Categorical(call_labels(result.member_probs, threshold),
                                                  categories=list(CALLS))
    cells.obs["trust"] = pd.Categorical([verdict] * cells.n_obs)
    cells.obsm["X_scdeal"] = result.embedding.astype(np.float32)
    if baseline is not None:
        cells.obs["prob_sensitive_baseline"] = baseline.prob


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
