"""Integrated gradients (captum) on the cell model: which genes drive each cell's reported probability. The attributed
output is the reported `prob_sensitive`: the mean over ensemble members of their calibrated probabilities
(`CellModel.network()`). Baseline: the zero vector of the model's input space, which is the sample's mean expression
profile (cells are gene-standardised with the sample's own statistics), so an attribution says how much a gene's
departure from the sample average moves the probability of sensitivity."""
from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import torch
from captum.attr import IntegratedGradients
from scipy.stats import hypergeom
from torch import nn

from .._utils import batch_slices, gene_positions, setting
from ..data import keys
from ..data.features import CellFeatures
from ..model.device import autocast

__all__ = ["ExplainConfig", "attributions_of_genes", "cluster_signatures", "differential_genes",
           "integrated_gradients", "overlap_with_de", "signature_genes", "subsample_by_cluster"]


@dataclass(frozen=True)
class ExplainConfig:
    """Integrated-gradient attribution and signatures (the explain step's flags)."""

    ig_steps: int = setting(32, "integrated-gradient steps (Riemann trapezoid)", minimum=2)
    ig_batch_size: int = setting(256, "cells per attribution batch (bounds memory)", minimum=1)
    top_genes: int = setting(50, "signature genes reported per direction", minimum=1)
    ig_max_cells: int = setting(
        20000, "cells attributed at most (a random subset, the same fraction of every cluster, beyond it)", minimum=10)
    seed: int = setting(0, "random seed of the subset of cells")


def integrated_gradients(model: nn.Module, features: CellFeatures, device: torch.device, *, n_steps: int = 32,
                         batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell, per-gene attributions (cells × genes, float32), each cell's convergence delta, and each gene's
    expression effect: mean over cells of attribution × sign(expression − baseline), positive when higher expression
    pushes towards "sensitive". Cells are processed in batches of `batch_size`, so memory is bounded by batch × steps
    × genes."""
    model = model.to(device).eval()
    ig = IntegratedGradients(model)
    attributions, deltas = [], []
    effect = np.zeros(len(features.mean), np.float64)
    for rows in batch_slices(features.n, batch_size):
        x = features.batch(rows, device)
        with autocast(device):
            attr, delta = ig.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps,
                                       return_convergence_delta=True)
        attr = attr.float().detach()
        effect += (attr * torch.sign(x)).sum(0).cpu().numpy()
        attributions.append(attr.cpu().numpy())
        deltas.append(delta.float().detach().cpu().numpy())
    return np.concatenate(attributions), np.concatenate(deltas), (effect / max(features.n, 1)).astype(np.float32)


def signature_genes(attr: np.ndarray, effect: np.ndarray, genes: list[str], *, top: int = 50) -> pd.DataFrame:
    """Genes whose expression drives predictions towards each class, ranked by mean |attribution|. direction:
    `sensitive` when higher expression raises the probability of sensitivity (effect > 0). fraction_towards_*: cells
    in which the gene's attribution points that way."""
    frame = pd.DataFrame({"gene": genes, "effect": effect, "mean_attribution": attr.mean(0),
                          "mean_abs_attribution": np.abs(attr).mean(0),
                          "fraction_towards_sensitive": (attr > 0).mean(0),
                          "fraction_towards_resistant": (attr < 0).mean(0)})
    sens = frame[frame.effect > 0].nlargest(top, "mean_abs_attribution").assign(direction="sensitive")
    res = frame[frame.effect < 0].nlargest(top, "mean_abs_attribution").assign(direction="resistant")
    out = pd.concat([sens, res], ignore_index=True)
    out["rank"] = out.groupby("direction").cumcount() + 1
    return out[["direction", "rank", "gene", "effect", "mean_abs_attribution", "mean_attribution",
                "fraction_towards_sensitive", "fraction_towards_resistant"]]


def cluster_signatures(attr: np.ndarray, genes: list[str], clusters: pd.Series, *, top: int = 10) -> pd.DataFrame:
    """Top genes by mean attribution within each cluster, both directions."""
    rows = []
    for cluster, idx in clusters.groupby(clusters.to_numpy(), observed=True).indices.items():
        mean = attr[idx].mean(0)
        order = np.argsort(mean)
        for direction, picks in (("sensitive", order[::-1][:top]), ("resistant", order[:top])):
            for rank, g in enumerate(picks, 1):
                rows.append({keys.CLUSTER: cluster, "direction": direction, "rank": rank, "gene": genes[g],
                             "mean_attribution": float(mean[g]), "n_cells": len(idx)})
    return pd.DataFrame(rows)


def overlap_with_de(signature: pd.DataFrame, de_genes: list[str], *, universe: int, top: int) -> dict:
    """Overlap of the top attributed genes with the top DE genes, with a hypergeometric p-value."""
    sig = set(signature.sort_values("mean_abs_attribution", ascending=False)["gene"].head(top))
    de = set(de_genes[:top])
    k = len(sig & de)
    p = float(hypergeom.sf(k - 1, universe, len(de), len(sig))) if sig and de else float("nan")
    return {"top_n": top, "n_signature": len(sig), "n_de": len(de), "overlap": k, "universe": universe,
            "expected": len(sig) * len(de) / max(universe, 1), "hypergeom_p": p, "shared_genes": sorted(sig & de)}


def attributions_of_genes(attr: np.ndarray, delta: np.ndarray, genes: list[str], *, wanted: list[str],
                          obs: pd.DataFrame) -> ad.AnnData:
    """The attributions of the `wanted` genes (cells × wanted) as AnnData; its `obs`: `cluster`, `prob_sensitive`,
    `predicted_label` (copied from `obs`) and `ig_delta` (each cell's convergence delta)."""
    columns = gene_positions(genes, wanted)
    table = ad.AnnData(attr[:, columns], obs=obs[[keys.CLUSTER, keys.PROB, keys.CALL]].copy(),
                       var=pd.DataFrame(index=wanted))
    table.obs["ig_delta"] = delta
    return table


def subsample_by_cluster(adata: ad.AnnData, max_cells: int, seed: int) -> ad.AnnData:
    """At most `max_cells` cells, keeping each cluster's share (attribution cost grows with cells)."""
    if adata.n_obs <= max_cells:
        return adata
    rng = np.random.default_rng(seed)
    keep = []
    for idx in adata.obs.groupby(keys.CLUSTER, observed=True).indices.values():
        keep.extend(rng.choice(idx, max(1, round(len(idx) * max_cells / adata.n_obs)), replace=False))
    return adata[np.sort(keep)].copy()


def differential_genes(adata: ad.AnnData, genes: list[str]) -> list[str]:
    """Model genes ranked by Wilcoxon DE between predicted-sensitive and predicted-resistant cells."""
    sub = adata[:, [g for g in genes if g in adata.var_names]].copy()
    if sub.obs[keys.CALL].nunique() < 2:
        return []
    sc.tl.rank_genes_groups(sub, keys.CALL, groups=["sensitive"], reference="resistant", method="wilcoxon")
    ranked = pd.DataFrame(sub.uns["rank_genes_groups"]["names"])["sensitive"]
    scores = pd.DataFrame(sub.uns["rank_genes_groups"]["scores"])["sensitive"].abs()
    return ranked.iloc[np.argsort(-scores.to_numpy())].tolist()
