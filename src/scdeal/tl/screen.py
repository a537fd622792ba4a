"""Rankings of a drug screen: which drugs hit which clusters of a sample, and how hard.

Efficacy is on an absolute scale: each drug's GDSC AUC (1: no effect over the screen's dose range; lower kills more)
predicted by the efficacy model (`scdeal.model.efficacy`) from each cluster's pseudo-bulk profile (its cells' counts
summed, as a bulk assay of the cluster would measure them), given the bulk lines' distribution across genes.
`efficacy` is 1 − AUC: the predicted mean growth inhibition over the dose range, comparable across drugs. The
predicted LN_IC50 stands beside it. A sample's figure is its clusters' weighted by their cells;
its uncertainty is the spread over the model's bootstrap members. Drugs are ranked by efficacy, per cluster and for
the sample; a cluster's `contrast` is its efficacy minus the rest of the sample's. Beside it stays the transferred
ensemble's probability-based call (mean probability, cells called sensitive with a Wilson 95 % interval, spread)
and its trust verdict. A drug with no measured AUC has no efficacy: reported, not ranked. Nothing here reads a cell
label.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._utils import batch_slices, gene_positions, setting
from ..data import keys
from ..data.bulkdata import BulkData
from ..data.features import BLOCK
from ..model.efficacy import EfficacyModel, fit_efficacy
from ..model.transfer import TransferResult
from .predictions import call_labels, otsu_threshold
from .trust import MIN_BULK_AUROC, trust_diagnostic

__all__ = ["SCREEN_HEADS", "Efficacy", "Likeness", "ScreenConfig", "annotate_screen", "cluster_ranking", "drug_calls",
           "drug_trust", "likeness", "probability_table", "sample_efficacy", "sample_ranking", "wilson_interval"]

TRUST_COLUMNS = ("bulk_val_auroc_genes_used", "members_sign_agreement", "members_lowest_spearman",
                 "members_mean_spearman", "members_reset_to_source", "spearman_transfer_vs_direct",
                 "spearman_transfer_vs_linear", "verdict")
# A screen's bulk model reads each drug off the shared bottleneck directly (`--predictor_hidden_dims` is for
# single drugs): a hidden head layer shared by every drug is a second bottleneck, and it pulls the drugs
# toward their common axis (general sensitivity) and away from their own.
SCREEN_HEADS: tuple[int, ...] = ()

Z95 = 1.959964
LIKE_A_LINE_PERCENTILE = 5   # a profile is like a bulk line when its nearest line is as close as this percentile of
                             # the lines' own nearest-line correlations, or closer
NEAREST_SHOWN = 5            # the bulk lines most like the sample, listed in the summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScreenConfig:
    """How a screen's drugs are ranked and shown (the screen step's own flags)."""

    min_bulk_auroc: float = setting(
        MIN_BULK_AUROC, "a drug whose transferred call rests on direct models ranking held-out bulk lines below this "
              "AUROC (on the sample's genes) gets the verdict weak_bulk_evidence", minimum=0, maximum=1)
    auc_threshold: float = setting(
        0.8, "a cluster responds to a drug when its predicted GDSC AUC is below this (1: no effect over the dose "
             "range; a quarter of measured GDSC line-drug pairs lie below 0.8)", minimum=0, maximum=1)
    efficacy_members: int = setting(
        10, "bootstrap refits of the efficacy (AUC) model; their spread is the efficacy's uncertainty", minimum=1)
    top_drugs: int = setting(20, "best ranked drugs shown in the report's clusters × drugs heatmap", minimum=1)


@dataclass(frozen=True)
class Likeness:
    """How like a bulk line the sample's pseudo-bulk is, the label-free check of the efficacy's absolute level: the
    model reads a profile unlike every line by extrapolation (on PC9, the platform gap left its pseudo-bulk nearest
    to blood-cancer lines, at 0.30, below nearly every line's own nearest neighbour)."""

    best: float                  # the sample's correlation with its most similar training line
    lines_low: float             # the LIKE_A_LINE_PERCENTILE of the lines' correlations with their nearest line
    nearest: list[tuple[str, float]]

    @property
    def like_a_line(self) -> bool:
        """Whether the sample is as close to some bulk line as bulk lines are to one another."""
        return self.best >= self.lines_low

    def summary(self) -> dict:
        """The check as the screen's summary records it."""
        return {"like_a_bulk_line": self.like_a_line, "best_line_correlation": round(self.best, 4),
                f"lines_nearest_correlation_p{LIKE_A_LINE_PERCENTILE}": round(self.lines_low, 4),
                "nearest_lines": [{"line": name, "correlation": round(r, 4)} for name, r in self.nearest]}


def likeness(model: EfficacyModel, profile: np.ndarray) -> Likeness:
    """The Likeness of one bulk-shaped profile (1 × genes)."""
    correlations = model.line_correlations(profile)[0]
    order = np.argsort(-correlations)[:NEAREST_SHOWN]
    return Likeness(best=float(correlations[order[0]]),
                    lines_low=float(np.percentile(model.nearest_line_correlations(), LIKE_A_LINE_PERCENTILE)),
                    nearest=[(model.line_names[i], float(correlations[i])) for i in order])


@dataclass
class Efficacy:
    """What the efficacy model says of one sample: predicted AUC and LN_IC50 per cluster (pseudo-bulk) and per cell."""

    drugs: list[str]
    clusters: list[str]
    sizes: np.ndarray            # cells per cluster
    auc: np.ndarray              # (1 + members) × clusters × drugs: the full fit, then each bootstrap member
    ln_ic50: np.ndarray          # the same for LN_IC50 (NaN: no LN_IC50 was given)
    cell_auc: np.ndarray         # cells × drugs, the full fit on each cell's own profile
    cell_ln_ic50: np.ndarray     # the same for LN_IC50
    val_spearman: np.ndarray     # per drug: the model's Spearman with validation lines' AUC
    typical_auc: np.ndarray      # per drug: its mean measured AUC over the bulk lines (the model's intercept)
    threshold: float             # predicted AUC below which a cluster responds
    alpha: float                 # the model's ridge penalty, chosen on validation lines
    likeness: Likeness           # how like a bulk line the whole sample's pseudo-bulk is

    @property
    def weights(self) -> np.ndarray:
        """Each cluster's share of the sample's cells."""
        return self.sizes / self.sizes.sum()


def cluster_order(codes: np.ndarray) -> list[str]:
    """Cluster names in natural order (2 before 10)."""
    return sorted(set(codes), key=lambda c: (len(c), c))


def sample_efficacy(cells, bulk: BulkData, genes: list[str], *, config: ScreenConfig, seed: int) -> Efficacy:
    """Fit the efficacy model on the bulk lines over `genes` (those the sample shares with the bulk model) and
    predict every cluster's pseudo-bulk profile and every cell, both given the bulk lines' distribution across
    genes first."""
    model = fit_efficacy(bulk.expression(genes), bulk.auc, bulk.split, drugs=bulk.drugs, genes=genes,
                         members=config.efficacy_members, seed=seed, ln_ic50=bulk.ln_ic50,
                         line_names=list(bulk.adata.obs_names))
    positions = gene_positions(list(cells.var_names), genes)
    codes = cells.obs[keys.CLUSTER].astype(str).to_numpy()
    clusters = cluster_order(codes)
    summed = pseudo_bulk(cells, positions, codes=codes, clusters=clusters)
    profiles = model.bulk_shaped(summed)
    check = likeness(model, model.bulk_shaped(summed.sum(0, keepdims=True)))
    if cells.uns.get(keys.CLUSTER_INFO, {}).get("input_scale") == "scaled":
        log.warning("the sample's expression is scaled per gene (no absolute level): its efficacy ranks drugs "
                    "within the sample, but its level is that of an average bulk line")
    elif not check.like_a_line:
        log.warning("the sample's pseudo-bulk is unlike every bulk line (best correlation %.2f, where %d %% of the "
                    "lines have a line at %.2f or closer): its efficacy's absolute level is an extrapolation; compare "
                    "drugs and clusters within the sample", check.best, 100 - LIKE_A_LINE_PERCENTILE, check.lines_low)
    cell_auc, cell_ln_ic50 = cell_predictions(model, cells.X[:, positions])
    return Efficacy(drugs=list(bulk.drugs), clusters=clusters, sizes=np.array([(codes == c).sum() for c in clusters]),
                    auc=model.predict(profiles, members=True), ln_ic50=predicted_or_nan(model, profiles, "ln_ic50"),
                    cell_auc=cell_auc, cell_ln_ic50=cell_ln_ic50, val_spearman=model.val_spearman,
                    typical_auc=model.fits["auc"].mean[0], threshold=config.auc_threshold, alpha=model.alpha,
                    likeness=check)


def pseudo_bulk(cells, positions: np.ndarray, *, codes: np.ndarray, clusters: list[str]) -> np.ndarray:
    """Clusters × genes (at `positions`) expression a bulk assay of each cluster would measure, up to its scale: the
    cells' raw counts summed where the cluster step kept them, else their log-normalised expression returned to a
    linear scale and summed. Per-gene scaled input has no linear scale: its clusters' mean."""
    member = sp.csr_matrix((codes[None, :] == np.array(clusters)[:, None]).astype(np.float64))
    if "counts" in cells.layers:
        return dense(member @ cells.layers["counts"][:, positions])
    x = cells.X[:, positions]
    if cells.uns.get(keys.CLUSTER_INFO, {}).get("input_scale") == "scaled":
        return dense(member @ x) / np.asarray(member.sum(1))
    return dense(member @ (x.expm1() if sp.issparse(x) else np.expm1(np.asarray(x, np.float64))))


def dense(x) -> np.ndarray:
    """`x` (a sparse or dense product) as a dense float64 array."""
    return x.toarray() if sp.issparse(x) else np.asarray(x, np.float64)


def predicted_or_nan(model: EfficacyModel, profiles: np.ndarray, response: str) -> np.ndarray:
    """(1 + members) × rows × drugs of `response`, all NaN where the model has no fit of it."""
    if response in model.fits:
        return model.predict(profiles, members=True, response=response)
    return np.full((len(model.fits["auc"].coef), len(profiles), len(model.drugs)), np.nan)


def cell_predictions(model: EfficacyModel, x) -> tuple[np.ndarray, np.ndarray]:
    """Cells × drugs predicted AUC and LN_IC50 (NaN without a fit), each cell's profile given the bulk lines'
    distribution, BLOCK cells at a time."""
    auc, ln_ic50 = [], []
    for rows in batch_slices(x.shape[0], BLOCK):
        shaped = model.bulk_shaped(x[rows].toarray() if sp.issparse(x) else np.asarray(x[rows]))
        auc.append(model.predict(shaped))
        ln_ic50.append(predicted_or_nan(model, shaped, "ln_ic50")[0])
    shape = (0, len(model.drugs))
    return (np.vstack(auc).astype(np.float32) if auc else np.zeros(shape, np.float32),
            np.vstack(ln_ic50).astype(np.float32) if ln_ic50 else np.zeros(shape, np.float32))


def drug_trust(result: TransferResult, config: ScreenConfig, cell_auc: np.ndarray) -> pd.DataFrame:
    """The trust diagnostic of each drug (members' agreement, transfer vs the direct model and vs the efficacy
    model's cell ranking, bulk evidence on the genes used, verdict), one row per drug; `bulk_val_auroc` is the
    evidence the call rests on. The efficacy model (a ridge of measured AUC, cells × drugs `cell_auc`) is the linear
    reference: the members are not trained towards it, so a drug whose call ranks the cells against it (lower AUC,
    more sensitive) is `disputed`. A drug without AUC has no reference."""
    rows = []
    member_probs, direct_prob, bulk_val_auroc, reset = (result.member_probs, result.direct_prob,
                                                        result.bulk_evidence, result.reset)
    for d, drug in enumerate(result.drugs):
        reference = -cell_auc[:, d] if np.isfinite(cell_auc[:, d]).all() else None
        trust = trust_diagnostic(member_probs[:, :, d], direct_prob[:, d], reference,
                                 bulk_val_auroc=float(bulk_val_auroc[d]), n_reset=int(reset[:, d].sum()),
                                 reference_name="linear", min_bulk_auroc=config.min_bulk_auroc)
        rows.append({"drug": drug, **{k: trust.get(k, np.nan) for k in TRUST_COLUMNS}})
    return pd.DataFrame(rows).rename(columns={"bulk_val_auroc_genes_used": "bulk_val_auroc"})


def annotate_screen(cells, result: TransferResult, efficacy: Efficacy) -> None:
    """Write the screen's per-cell predictions into `cells`, in place.

    Sets the following fields:
        `obsm['prob_sensitive_screen']` and `obsm['prob_sensitive_screen_sd']` (cells × drugs data frames:
        ensemble mean and spread, one column per drug), `obsm['prob_sensitive_screen_direct']` (the
        direct models, without transfer), `obsm['auc_screen']` and `obsm['ln_ic50_screen']` (each cell's predicted
        GDSC AUC and LN_IC50).
    """
    for key, values in ((keys.SCREEN_PROB, result.prob), (keys.SCREEN_PROB_SD, result.prob_sd),
                        (keys.SCREEN_PROB_DIRECT, result.direct_prob), (keys.SCREEN_AUC, efficacy.cell_auc),
                        (keys.SCREEN_LN_IC50, efficacy.cell_ln_ic50)):
        cells.obsm[key] = pd.DataFrame(values.astype(np.float32), index=cells.obs_names, columns=result.drugs)


def probability_table(cells, values: np.ndarray, drugs: list[str]) -> pd.DataFrame:
    """One row per cell: its id, cluster, and `values` (cells × drugs) with one column per drug."""
    frame = pd.DataFrame(values.astype(np.float32), columns=drugs)
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


def call_summary(prob: np.ndarray, prob_sd: np.ndarray, calls: np.ndarray, *, bulk_rate: np.ndarray) -> dict:
    """The transferred call over one group of cells, per drug: mean probability, the drug's rate of sensitive
    bulk lines (what it is calibrated to), cells called sensitive with interval and uncertain, spread."""
    n = len(prob)
    k = (calls == "sensitive").sum(0)
    low, high = wilson_interval(k, n)
    return {"mean_prob": prob.mean(0), "bulk_sensitive_rate": bulk_rate, "sensitive_fraction": k / max(n, 1),
            "sensitive_low": low, "sensitive_high": high, "mean_sd": prob_sd.mean(0),
            "uncertain_fraction": (calls == "uncertain").mean(0)}


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` sorted by efficacy with a `rank` among drugs with one (drugs without measured AUC last, no rank)."""
    frame = frame.assign(ranked=np.isfinite(frame["efficacy"].to_numpy(float)))
    frame = frame.sort_values(["ranked", "efficacy"], ascending=[False, False], kind="stable")
    frame.insert(0, "rank", np.where(frame["ranked"], np.arange(1, len(frame) + 1), np.nan))
    frame["rank"] = frame["rank"].astype("Int64")
    return frame.reset_index(drop=True)


def sample_ranking(member_probs: np.ndarray, efficacy: Efficacy, *, bulk_rate: np.ndarray,
                   trust: pd.DataFrame) -> pd.DataFrame:
    """The sample's drugs ranked by efficacy (its clusters' predicted AUC weighted by their cells), with the
    fraction of cells in clusters that respond, the spread of both over the model's members, and beside them the
    transferred call (from members × cells × drugs probabilities) and each drug's trust diagnostic (`trust`:
    one row per drug with `drug`)."""
    auc = np.einsum("k,mkd->md", efficacy.weights, efficacy.auc)
    responding = np.einsum("k,mkd->md", efficacy.weights, (efficacy.auc < efficacy.threshold).astype(float))
    responding[np.isnan(auc)] = np.nan
    frame = pd.DataFrame({
        "drug": efficacy.drugs, "n_cells": int(efficacy.sizes.sum()), "auc": auc[0], "efficacy": 1 - auc[0],
        "efficacy_sd": spread(auc), "responding_fraction": responding[0], "responding_fraction_sd": spread(responding),
        "typical_auc": efficacy.typical_auc, "vs_typical": efficacy.typical_auc - auc[0],
        **ic50_columns(np.einsum("k,mkd->md", efficacy.weights, efficacy.ln_ic50)),
        "efficacy_val_spearman": efficacy.val_spearman,
        **call_summary(member_probs.mean(0), member_probs.std(0), drug_calls(member_probs), bulk_rate=bulk_rate)})
    return ranked(frame.merge(trust, on="drug", how="left"))


def ic50_columns(ln_ic50: np.ndarray) -> dict[str, np.ndarray]:
    """The predicted LN_IC50 of the full fit and its spread over the members ((1 + members) × drugs)."""
    return {"ln_ic50": ln_ic50[0], "ln_ic50_sd": spread(ln_ic50)}


def spread(values: np.ndarray) -> np.ndarray:
    """The sd over the bootstrap members (rows 1…) of (1 + members) × … values (0 with no member)."""
    return values[1:].std(0) if len(values) > 1 else np.zeros(values.shape[1:])


def cluster_ranking(member_probs: np.ndarray, efficacy: Efficacy, *, bulk_rate: np.ndarray,
                    clusters: pd.Series) -> pd.DataFrame:
    """Per cluster, the drugs ranked by efficacy: predicted AUC, efficacy and its spread, the contrast with the rest
    of the sample (efficacy minus the other clusters', weighted by their cells) and the share of the model's
    members predicting a response; beside them the transferred call of the cluster's cells."""
    prob, prob_sd, calls = member_probs.mean(0), member_probs.std(0), drug_calls(member_probs)
    codes = clusters.astype(str).to_numpy()
    frames = []
    for k, cluster in enumerate(efficacy.clusters):
        rows = codes == cluster
        others = np.delete(np.arange(len(efficacy.clusters)), k)
        rest = (np.einsum("k,mkd->md", efficacy.weights[others], efficacy.auc[:, others])
                / efficacy.weights[others].sum()) if len(others) else np.full_like(efficacy.auc[:, 0], np.nan)
        contrast = rest - efficacy.auc[:, k]   # efficacy here minus there: 1 − AUC on both sides
        responds = efficacy.auc[1:, k] < efficacy.threshold if len(efficacy.auc) > 1 else \
            efficacy.auc[:1, k] < efficacy.threshold
        frame = pd.DataFrame({
            "drug": efficacy.drugs, "n_cells": int(rows.sum()), "auc": efficacy.auc[0, k],
            "efficacy": 1 - efficacy.auc[0, k], "efficacy_sd": spread(efficacy.auc[:, k]), "contrast": contrast[0],
            "contrast_sd": spread(contrast), **ic50_columns(efficacy.ln_ic50[:, k]),
            "responding_members": np.where(np.isnan(efficacy.auc[0, k]), np.nan, responds.mean(0)),
            **call_summary(prob[rows], prob_sd[rows], calls[rows], bulk_rate=bulk_rate)})
        frames.append(ranked(frame).assign(**{keys.CLUSTER: cluster}))
    out = pd.concat(frames, ignore_index=True)
    return out[[keys.CLUSTER, *[c for c in out.columns if c != keys.CLUSTER]]]
