"""A trust diagnostic for every (sample, drug): does the call follow the bulk evidence, and do the
models that could make it agree? Nothing here reads a cell label.

Verdicts, most serious first:
- weak_bulk_evidence: the direct models (the bulk model refitted on the sample's genes) rank the bulk lines
  they did not learn from barely above chance, counted out of fold over the lines nearest the sample in
  expression (every line where those hold too few of a class): the evidence does not decide this sample;
- unstable: the ensemble members, cross-fitted (each learns from other folds of the bulk lines and starts
  from its own seed, as runs with other seeds do), rank the cells differently (some pair below
  MIN_MEMBER_SPEARMAN, the agreement two runs with other seeds need), or half of them kept their direct
  model because the transfer reversed their ranking against its anchor;
- disputed: the deep transfer and a linear reference rank the cells in opposite directions (a single-drug
  run's logistic baseline; a screen's bulk signature of the drug);
- consistent: none of the above.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..model.orientation import rank_correlation

__all__ = ["ADVICE", "DISAGREEMENT", "MIN_BULK_AUROC", "MIN_MEMBER_SPEARMAN", "member_agreement", "trust_diagnostic",
           "verdict"]

MIN_BULK_AUROC = 0.65      # out-of-fold bulk lines, genes used: below, the bulk evidence is too weak to transfer
# every two members must rank the cells at least this alike: two runs with other seeds must agree at 0.8, and
# members, each on part of the lines, agree less than the consensus of whole runs (seed-agreement benchmark)
MIN_MEMBER_SPEARMAN = 0.85
DISAGREEMENT = -0.1        # rank correlation below which two scores point opposite ways (noise allowed)

ADVICE = {
    "consistent": "Members, the direct bulk model and the baseline agree on which cells are sensitive; "
                  "use the calls, ranked by prob_sensitive.",
    "weak_bulk_evidence": "The bulk model ranks held-out cell lines barely above chance on this sample's genes: "
                          "the calls are not supported by bulk evidence; add response tables or do not use them.",
    "unstable": "Ensemble members learning from different folds of the bulk lines rank the cells differently, so "
                "another seed would give another call: treat the calls as uncertain; add bulk evidence (more "
                "response tables) before acting on them.",
    "disputed": "The deep transfer and the linear baseline rank the cells in opposite directions: confirm the "
                "direction with an independent marker before acting on either.",
}


def member_agreement(member_scores: np.ndarray) -> tuple[float, float, float]:
    """Fraction of member pairs whose cell rankings agree in sign, and the lowest and mean pairwise rank
    correlation (1 for a single member)."""
    rhos = [rank_correlation(a, b) for a, b in combinations(member_scores, 2)]
    rhos = [r for r in rhos if np.isfinite(r)]
    if not rhos:
        return 1.0, float("nan"), 1.0
    return float(np.mean([r > 0 for r in rhos])), float(min(rhos)), float(np.mean(rhos))


def trust_diagnostic(member_probs: np.ndarray, direct_prob: np.ndarray, reference: np.ndarray | None, *,
                     bulk_val_auroc: float, n_reset: int, reference_name: str = "baseline",
                     min_bulk_auroc: float = MIN_BULK_AUROC) -> dict:
    """Sign agreement, rank correlations between the transferred and direct scores and the linear
    `reference` (named `reference_name` in the keys), the bulk validation AUROC on the genes used, and the
    verdict with one sentence of advice."""
    prob = member_probs.mean(0)
    agreement, lowest, mean = member_agreement(member_probs)
    out = {"members_sign_agreement": agreement, "members_lowest_spearman": lowest, "members_mean_spearman": mean,
           "members_reset_to_source": int(n_reset), "n_members": len(member_probs),
           "bulk_val_auroc_genes_used": float(bulk_val_auroc),
           "spearman_transfer_vs_direct": rank_correlation(prob, direct_prob)}
    if reference is not None:
        out[f"spearman_transfer_vs_{reference_name}"] = rank_correlation(prob, reference)
        out[f"spearman_direct_vs_{reference_name}"] = rank_correlation(direct_prob, reference)
    out["verdict"] = verdict(out, out.get(f"spearman_transfer_vs_{reference_name}", 0.0), min_bulk_auroc=min_bulk_auroc)
    out["advice"] = ADVICE[out["verdict"]]
    return out


def verdict(d: dict, transfer_vs_reference: float, *, min_bulk_auroc: float = MIN_BULK_AUROC) -> str:
    """The most serious verdict the diagnostic `d` and the transfer's rank correlation with the linear
    reference support (see the module's docstring)."""
    if not d["bulk_val_auroc_genes_used"] >= min_bulk_auroc:
        return "weak_bulk_evidence"
    if (d["members_sign_agreement"] < 1.0 or d["members_lowest_spearman"] < MIN_MEMBER_SPEARMAN
            or 2 * d["members_reset_to_source"] >= d["n_members"]):
        return "unstable"
    if transfer_vs_reference < DISAGREEMENT:
        return "disputed"
    return "consistent"
