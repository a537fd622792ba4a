"""Integrated gradients (captum) on the trained cell path: which genes drive each cell's prediction.

Baseline: the zero vector of the model's input space, which is the sample's mean expression profile
(cells are gene-standardised with the sample's own statistics), so an attribution says how much a
gene's departure from the sample average moves the probability of sensitivity.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients
from scipy.stats import hypergeom
from torch import nn

from ..data.features import CellFeatures
from ..model.device import autocast
from ..model.networks import Encoder, Predictor

log = logging.getLogger(__name__)


class SensitivityProbability(nn.Module):
    """encoder → predictor → sigmoid: the output attributed."""

    def __init__(self, encoder: nn.Module, predictor: nn.Module):
        super().__init__()
        self.encoder, self.predictor = encoder, predictor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.predictor(self.encoder(x)))


def cell_model_network(cell_model: dict) -> SensitivityProbability:
    """The transferred cell encoder and predictor (as saved by the transfer step), eval-ready."""
    enc = Encoder(len(cell_model["genes"]), tuple(cell_model["hidden"]), cell_model["latent"], 0.0,
                  cell_model["variational"])
    enc.load_state_dict(cell_model["encoder"])
    pred = Predictor(cell_model["latent"], tuple(cell_model["predictor_hidden"]), 0.0)
    pred.load_state_dict(cell_model["predictor"])
    return SensitivityProbability(enc, pred).eval()


def integrated_gradients(model: nn.Module, features: CellFeatures, device: torch.device, n_steps: int = 32,
                         batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell, per-gene attributions (cells × genes, float32), each cell's convergence delta, and
    each gene's expression effect: mean over cells of attribution × sign(expression − baseline),
    positive when higher expression pushes towards "sensitive".

    Cells are processed in batches of `batch_size`, so memory is bounded by batch × steps × genes.
    """
    model = model.to(device).eval()
    ig = IntegratedGradients(model)
    attributions, deltas = [], []
    effect = np.zeros(len(features.mean), np.float64)
    for start in range(0, features.n, batch_size):
        x = features.batch(np.arange(start, min(start + batch_size, features.n)), device)
        with autocast(device):
            attr, delta = ig.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps,
                                       return_convergence_delta=True)
        attr = attr.float().detach()
        effect += (attr * torch.sign(x)).sum(0).cpu().numpy()
        attributions.append(attr.cpu().numpy())
        deltas.append(delta.float().detach().cpu().numpy())
    return np.concatenate(attributions), np.concatenate(deltas), (effect / max(features.n, 1)).astype(np.float32)


def signature_genes(attr: np.ndarray, effect: np.ndarray, genes: list[str], top: int = 50) -> pd.DataFrame:
    """Genes whose expression drives predictions towards each class, ranked by mean |attribution|.

    direction: `sensitive` when higher expression raises the probability of sensitivity (effect > 0).
    fraction_towards_*: cells in which the gene's attribution points that way.
    """
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


def cluster_signatures(attr: np.ndarray, genes: list[str], clusters: pd.Series, top: int = 10) -> pd.DataFrame:
    """Top genes by mean attribution within each cluster, both directions."""
    rows = []
    for cluster, idx in clusters.groupby(clusters.to_numpy(), observed=True).indices.items():
        mean = attr[idx].mean(0)
        order = np.argsort(mean)
        for direction, picks in (("sensitive", order[::-1][:top]), ("resistant", order[:top])):
            for rank, g in enumerate(picks, 1):
                rows.append({"cluster": cluster, "direction": direction, "rank": rank, "gene": genes[g],
                             "mean_attribution": float(mean[g]), "n_cells": len(idx)})
    return pd.DataFrame(rows)


def overlap_with_de(signature: pd.DataFrame, de_genes: list[str], universe: int, top: int) -> dict:
    """Overlap of the top attributed genes with the top DE genes, with a hypergeometric p-value."""
    sig = set(signature.sort_values("mean_abs_attribution", ascending=False)["gene"].head(top))
    de = set(de_genes[:top])
    k = len(sig & de)
    p = float(hypergeom.sf(k - 1, universe, len(de), len(sig))) if sig and de else float("nan")
    return {"top_n": top, "n_signature": len(sig), "n_de": len(de), "overlap": k, "universe": universe,
            "expected": len(sig) * len(de) / max(universe, 1), "hypergeom_p": p, "shared_genes": sorted(sig & de)}
