"""Rankings of a drug screen: which drugs would hit which clusters of a sample, and the sample as a whole.

Per drug and group of cells: the mean probability of sensitivity, its lift (the mean probability over
the drug's rate of sensitive bulk lines, which the probabilities are calibrated to: 1 is an average
cell line, 2 twice as likely sensitive), the fraction of cells called sensitive with a Wilson 95 %
interval, and the mean ensemble spread (uncertainty). Drugs are ranked by lift, since their rates of
sensitive lines differ (binary calls: 6–89 %; binarised responses: the quantile rule's 20 %) and the
mean probability alone would rank drugs by how many lines they kill. A drug whose
source heads rank held-out bulk lines no better than `min_bulk_auroc` is reported but not ranked:
its calls are not supported by bulk evidence. Nothing here reads a cell label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._utils import setting
from ..data import keys
from ..model.transfer import TransferResult
from .predictions import call_labels, otsu_threshold
from .trust import MIN_BULK_AUROC, trust_diagnostic

__all__ = ["SCREEN_HEADS", "ScreenConfig", "annotate_screen", "cluster_ranking", "drug_calls", "drug_trust",
           "probability_table", "sample_ranking", "wilson_interval"]

TRUST_COLUMNS = ("bulk_val_auroc_genes_used", "members_sign_agreement", "members_lowest_spearman",
                 "members_mean_spearman", "members_reset_to_source", "spearman_transfer_vs_direct",
                 "spearman_transfer_vs_signature", "verdict")
# A screen's bulk model reads each drug off the shared bottleneck directly (`--predictor_hidden_dims` is for
# single drugs): a hidden head layer shared by every drug is a second bottleneck, and it pulls the drugs
# toward their common axis (general sensitivity) and away from their own.
SCREEN_HEADS: tuple[int, ...] = ()

Z95 = 1.959964


@dataclass(frozen=True)
class ScreenConfig:
    """How a screen's drugs are ranked and shown (the screen step's own flags)."""

    min_bulk_auroc: float = setting(
        MIN_BULK_AUROC, "drugs whose heads rank held-out bulk lines below this AUROC (on the sample's genes) are reported, "
              "not ranked", minimum=0, maximum=1)
    top_drugs: int = setting(20, "ranked drugs shown in the report's clusters × drugs heatmap", minimum=1)


def drug_trust(result: TransferResult, config: ScreenConfig) -> pd.DataFrame:
    """The trust diagnostic of each drug (members' agreement, transfer vs the direct model and vs the drug's
    bulk signature, bulk evidence on the genes used, verdict), one row per drug; `bulk_val_auroc` is the
    evidence ranking is gated on. The signature (sensitive minus resistant mean profile of all training lines,
    scored on each cell) is the screen's linear reference: a drug whose transferred call ranks the cells
    against it is `disputed`."""
    rows = []
    member_probs, direct_prob, bulk_val_auroc, reset = (result.member_probs, result.direct_prob,
                                                        result.bulk_evidence, result.reset)
    for d, drug in enumerate(result.drugs):
        trust = trust_diagnostic(member_probs[:, :, d], direct_prob[:, d], result.signature[:, d],
                                 bulk_val_auroc=float(bulk_val_auroc[d]), n_reset=int(reset[:, d].sum()),
                                 reference_name="signature", min_bulk_auroc=config.min_bulk_auroc)
        rows.append({"drug": drug, **{k: trust[k] for k in TRUST_COLUMNS}})
    return pd.DataFrame(rows).rename(columns={"bulk_val_auroc_genes_used": "bulk_val_auroc"})


def annotate_screen(cells, result: TransferResult) -> None:
    """Write the screen's probabilities into `cells`, in place.

    Sets the following fields:
        `obsm['prob_sensitive_screen']` and `obsm['prob_sensitive_screen_sd']` (cells × drugs data frames:
        ensemble mean and spread, one column per drug) and `obsm['prob_sensitive_screen_direct']` (the
        direct models, without transfer).
    """
    for key, values in ((keys.SCREEN_PROB, result.prob), (keys.SCREEN_PROB_SD, result.prob_sd),
                        (keys.SCREEN_PROB_DIRECT, result.direct_prob)):
        cells.obsm[key] = pd.DataFrame(values.astype(np.float32), index=cells.obs_names, columns=result.drugs)


def probability_table(cells, result: TransferResult) -> pd.DataFrame:
    """One row per cell: its id, cluster, and the probability of sensitivity to each drug."""
    frame = pd.DataFrame(result.prob.astype(np.float32), columns=result.drugs)
    frame.insert(0, keys.CLUSTER, cells.obs[keys.CLUSTER].astype(str).to_numpy())
    frame.insert(0, "cell_id", cells.obs_names)
    return frame


def wilson_interval(k: np.ndarray, n: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95 % interval of the proportion k / n (elementwise)."""
    k, n = np.asarray(k, float), np.maximum(np.asarray(n, float), 1.0)
    p = k / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n ** 2)) / (1 + Z95 ** 2 / n)
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0, 1))      # exact ends, not rounding noise
    return low, np.where(k == n, 1.0, np.clip(centre + half, 0, 1))


def drug_calls(member_probs: np.ndarray) -> np.ndarray:
    """cells × drugs calls (sensitive / resistant / uncertain) from members × cells × drugs probabilities,
    each drug at its own Otsu split (the single-drug default rule, from the probabilities only)."""
    return np.column_stack([call_labels(member_probs[..., d], otsu_threshold(member_probs[..., d].mean(0)))
                            for d in range(member_probs.shape[2])])


def group_summary(prob: np.ndarray, prob_sd: np.ndarray, sensitive: np.ndarray, *, drugs: list[str],
                  bulk_rate: np.ndarray) -> pd.DataFrame:
    """One row per drug over one group of cells: mean probability and its lift over the drug's rate of
    sensitive bulk lines, sensitive fraction with interval, spread."""
    n = len(prob)
    k = sensitive.sum(0)
    low, high = wilson_interval(k, n)
    mean = prob.mean(0)
    return pd.DataFrame({"drug": drugs, "n_cells": n, "mean_prob": mean, "bulk_sensitive_rate": bulk_rate,
                         "lift": mean / np.maximum(bulk_rate, 1e-6), "sensitive_fraction": k / max(n, 1),
                         "sensitive_low": low, "sensitive_high": high, "mean_sd": prob_sd.mean(0)})


def ranked(frame: pd.DataFrame, rankable: pd.Series) -> pd.DataFrame:
    """`frame` sorted by lift with a `rank` among rankable drugs (unrankable ones last, no rank)."""
    frame = frame.assign(ranked=frame["drug"].map(rankable).fillna(False).astype(bool))
    frame = frame.sort_values(["ranked", "lift"], ascending=[False, False], kind="stable")
    frame.insert(0, "rank", np.where(frame["ranked"], np.arange(1, len(frame) + 1), np.nan))
    frame["rank"] = frame["rank"].astype("Int64")
    return frame.reset_index(drop=True)


def sample_ranking(member_probs: np.ndarray, drugs: list[str], *, bulk_rate: np.ndarray, trust: pd.DataFrame,
                   config: ScreenConfig) -> pd.DataFrame:
    """The sample-level drug ranking from members × cells × drugs probabilities, joined with each drug's
    trust diagnostic (`trust`: one row per drug with `drug`, `bulk_val_auroc` and `verdict`); `bulk_rate`:
    each drug's rate of sensitive bulk lines."""
    prob, prob_sd = member_probs.mean(0), member_probs.std(0)
    calls = drug_calls(member_probs)
    frame = group_summary(prob, prob_sd, calls == "sensitive", drugs=drugs, bulk_rate=bulk_rate)
    frame["uncertain_fraction"] = (calls == "uncertain").mean(0)
    frame = frame.merge(trust, on="drug", how="left")
    rankable = pd.Series(frame["bulk_val_auroc"].to_numpy() >= config.min_bulk_auroc, index=frame["drug"])
    return ranked(frame, rankable)


def cluster_ranking(member_probs: np.ndarray, drugs: list[str], *, bulk_rate: np.ndarray, clusters: pd.Series,
                    rankable: pd.Series) -> pd.DataFrame:
    """Per cluster, the drugs ranked by lift (`rankable`: drug → whether it may be ranked), from members ×
    cells × drugs probabilities."""
    prob, prob_sd = member_probs.mean(0), member_probs.std(0)
    calls = drug_calls(member_probs) == "sensitive"
    codes = clusters.astype(str).to_numpy()
    frames = []
    for cluster in sorted(set(codes), key=lambda c: (len(c), c)):
        rows = codes == cluster
        frame = ranked(group_summary(prob[rows], prob_sd[rows], calls[rows], drugs=drugs, bulk_rate=bulk_rate), rankable)
        frames.append(frame.assign(**{keys.CLUSTER: cluster}))
    out = pd.concat(frames, ignore_index=True)
    return out[[keys.CLUSTER, *[c for c in out.columns if c != keys.CLUSTER]]]
