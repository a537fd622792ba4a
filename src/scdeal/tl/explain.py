"""Integrated gradients on the cell model: which genes drive each cell's reported probability. The attributed
output is the reported `prob_sensitive`: the mean over ensemble members of their calibrated probabilities
(`CellModel.network()`). Baseline: the zero vector of the model's input space, which is the sample's mean expression
profile (cells are gene-standardised with the sample's own statistics), so an attribution says how much a gene's
departure from the sample average moves the probability of sensitivity. The path integral is Gauss–Legendre
quadrature (captum's default method, same points and weights), evaluated in the members' first hidden layer rather
than in gene space: the same numbers at a small fraction of the cost."""
from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import torch
from scipy.stats import hypergeom
from torch import nn

from .._utils import batch_slices, gene_positions, setting
from ..data import keys
from ..data.features import CellFeatures
from ..model.cell_model import EnsembleProbability
from ..model.networks import Encoder

__all__ = ["ExplainConfig", "attributions_of_genes", "cluster_signatures", "differential_genes",
           "integrated_gradients", "overlap_with_de", "signature_genes", "subsample_by_cluster"]


@dataclass(frozen=True)
class ExplainConfig:
    """Integrated-gradient attribution and signatures (the explain step's flags)."""

    ig_steps: int = setting(32, "integrated-gradient steps (Gauss–Legendre quadrature points)", minimum=2)
    ig_batch_size: int = setting(256, "cells per attribution batch (bounds memory)", minimum=1)
    top_genes: int = setting(50, "signature genes reported per direction", minimum=1)
    ig_max_cells: int = setting(
        20000, "cells attributed at most (a random subset, the same fraction of every cluster, beyond it)", minimum=10)
    seed: int = setting(0, "random seed of the subset of cells")


def gauss_legendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points α in (0, 1) and weights (summing to 1) of `n_steps`-point Gauss–Legendre quadrature on [0, 1]:
    captum's default `gausslegend` method."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return (nodes + 1) / 2, weights / 2


def _member_logit(encoder: Encoder, predictor: nn.Module, pre: torch.Tensor) -> torch.Tensor:
    """A member's logit from its first layer's pre-activation `pre` = W x + b (rows × hidden): the rest of its
    network."""
    return predictor(encoder.mu(encoder.body[1:](pre)))[:, 0]


def _probability(model: EnsembleProbability, pres: list[torch.Tensor]) -> torch.Tensor:
    """The ensemble's probability F from each member's first-layer pre-activation (the same rows for all)."""
    logits = torch.stack([_member_logit(enc, pred, pre)
                          for enc, pred, pre in zip(model.encoders, model.predictors, pres, strict=True)])
    return torch.sigmoid(model.slope[:, None] * logits + model.intercept[:, None]).mean(0)


def _batch_attributions(model: EnsembleProbability, x: torch.Tensor, *, alphas: torch.Tensor,
                        weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients of the cells `x` (cells × genes) from the zero baseline, and their convergence deltas.
    Each member's first layer is linear, so on the path α·x its pre-activation is h_m = b_m + α·u_m with
    u_m = W_m x, and by the chain rule, exactly,
        attribution_g = x_g · Σ_m Σ_j W_m[j, g] · mean_α ∂F/∂h_{m,j}(b_m + α·u_m),
    mean_α being the quadrature's weighted mean over its points α (`alphas`, `weights`).
    The path is thus walked in the hidden space (steps·cells × hidden) and mapped back to genes with one product per
    member, instead of pushing steps·cells × genes through every first layer forward and backward."""
    firsts = [enc.first_layer() for enc in model.encoders]
    n_cells = len(x)
    with torch.no_grad():
        products = [x @ layer.weight.T for layer in firsts]                                  # u_m: cells × hidden
        path = [torch.addcmul(layer.bias, alphas[:, None, None], u).flatten(0, 1).requires_grad_()
                for layer, u in zip(firsts, products, strict=True)]                        # steps·cells × hidden
    with torch.enable_grad():
        grads = torch.autograd.grad(_probability(model, path).sum(), path)  # rows are independent: one backward
    with torch.no_grad():
        mean_grads = [torch.tensordot(weights, g.view(len(alphas), n_cells, -1), dims=1) for g in grads]
        attr = x * sum(g @ layer.weight for g, layer in zip(mean_grads, firsts, strict=True))
        at_x = _probability(model, [u + layer.bias for layer, u in zip(firsts, products, strict=True)])
        at_baseline = _probability(model, [layer.bias[None] for layer in firsts])
        return attr, attr.sum(1) - (at_x - at_baseline)


def integrated_gradients(model: EnsembleProbability, features: CellFeatures, device: torch.device, *,
                         n_steps: int = 32, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell, per-gene attributions (cells × genes, float32), each cell's convergence delta (sum of its
    attributions − (F(x) − F(baseline)), as captum reports it), and each gene's expression effect: mean over cells
    of attribution × sign(expression − baseline), positive when higher expression pushes towards "sensitive". Cells
    are processed in batches of `batch_size`, so memory is bounded by batch × (genes + steps × hidden). Full float32
    precision on every device: the quadrature no longer dominates the cost, so mixed precision would buy little."""
    model = model.to(device).eval()
    alphas, weights = (torch.as_tensor(a, dtype=torch.float32, device=device) for a in gauss_legendre(n_steps))
    attributions, deltas = [], []
    effect = np.zeros(len(features.mean), np.float64)
    for rows in batch_slices(features.n, batch_size):
        x = features.batch(rows, device)
        attr, delta = _batch_attributions(model, x, alphas=alphas, weights=weights)
        effect += (attr * torch.sign(x)).sum(0).cpu().numpy()
        attributions.append(attr.cpu().numpy())
        deltas.append(delta.cpu().numpy())
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
