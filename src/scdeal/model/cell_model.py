"""The cell model: what the transfer step saves and the explanation step attributes. The reported probability of
sensitivity (`prob_sensitive`) is the mean over ensemble members of each member's calibrated probability,
sigmoid(slope · logit + intercept). `CellModel.network()` computes exactly that, so explanations attribute the output
the user reads. Cells are put in the model's feature space with the gene statistics of the whole sample the model was
transferred to."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import torch
from torch import nn

from .._utils import gene_positions
from ..data.features import CellFeatures
from ..data.writers import atomic_path
from ..errors import InputError
from .networks import Encoder, Head
from .training import BulkConfig, load_tagged

__all__ = ["CELL_MODEL_FORMAT", "CellModel", "EnsembleProbability", "MemberWeights"]

CELL_MODEL_FORMAT = "scdeal-cell-model/1"


@dataclass
class MemberWeights:
    """One ensemble member of one drug: its cell encoder and classifier weights and its Platt calibration."""

    encoder: dict[str, torch.Tensor]
    predictor: dict[str, torch.Tensor]
    calibration: dict[str, float]    # slope, intercept


class EnsembleProbability(nn.Module):
    """Cells' model features → the reported probability of sensitivity: the mean over members of
    sigmoid(slope · logit + intercept)."""

    def __init__(self, encoders: Sequence[nn.Module], predictors: Sequence[nn.Module],
                 calibrations: Sequence[dict[str, float]]):
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.predictors = nn.ModuleList(predictors)
        self.register_buffer("slope", torch.tensor([c["slope"] for c in calibrations], dtype=torch.float32))
        self.register_buffer("intercept", torch.tensor([c["intercept"] for c in calibrations], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One probability per row of `x`."""
        logits = torch.stack([pred(enc(x)).float()[:, 0] for enc, pred in zip(self.encoders, self.predictors,
                                                                                strict=True)])
        return torch.sigmoid(self.slope[:, None] * logits + self.intercept[:, None]).mean(0)


@dataclass
class CellModel:
    """One drug's transferred ensemble, self-described: genes, the sample's gene statistics, architecture, members."""

    genes: list[str]
    gene_mean: np.ndarray            # the sample's gene statistics (model features of its cells)
    gene_sd: np.ndarray
    hidden_dims: tuple[int, ...]
    predictor_hidden_dims: tuple[int, ...]
    latent_dim: int
    variational: bool
    members: list[MemberWeights]

    @classmethod
    def from_ensemble(cls, *, genes: list[str], features: CellFeatures, config: BulkConfig,
                      encoders: Sequence[nn.Module], predictors: Sequence[nn.Module],
                      calibrations: Sequence[dict[str, float]]) -> CellModel:
        """The cell model of trained members, on the genes and gene statistics of `features`."""
        members = [MemberWeights(enc.cpu().state_dict(), pred.cpu().state_dict(), dict(cal))
                   for enc, pred, cal in zip(encoders, predictors, calibrations, strict=True)]
        return cls(genes=list(genes), gene_mean=features.mean, gene_sd=features.sd,
                   hidden_dims=tuple(config.hidden_dims), predictor_hidden_dims=tuple(config.predictor_hidden_dims),
                   latent_dim=config.latent_dim, variational=config.encoder == "vae", members=members)

    def network(self) -> EnsembleProbability:
        """The network whose output is the reported `prob_sensitive`, eval-ready on the CPU."""
        nets = [(Encoder(len(self.genes), self.hidden_dims, self.latent_dim, dropout=0.0, variational=self.variational),
                 Head(self.latent_dim, self.predictor_hidden_dims, dropout=0.0)) for _ in self.members]
        for (enc, pred), member in zip(nets, self.members, strict=True):
            enc.load_state_dict(member.encoder)
            pred.load_state_dict(member.predictor)
        return EnsembleProbability([e for e, _ in nets], [p for _, p in nets], [m.calibration for m in self.members]).eval()

    def features(self, cells: ad.AnnData) -> CellFeatures:
        """Model features of `cells` with the model's genes and the transferred sample's gene statistics (InputError:
        `cells` lack some of the model's genes)."""
        positions = gene_positions(cells.var_names, self.genes)
        if (positions < 0).any():
            missing = [g for g, i in zip(self.genes, positions, strict=True) if i < 0]
            raise InputError(f"The cells lack {len(missing)} genes of the cell model (e.g. {missing[:3]}): use the "
                             "annotated sample written by the transfer step.")
        return CellFeatures(cells.X, positions, stats=(self.gene_mean, self.gene_sd))

    def save(self, path: str | Path, provenance: dict) -> None:
        """Write the cell model (format CELL_MODEL_FORMAT) with `provenance`, atomically."""
        payload = {"format": CELL_MODEL_FORMAT, "genes": self.genes,
                   "gene_mean": torch.from_numpy(self.gene_mean), "gene_sd": torch.from_numpy(self.gene_sd),
                   "hidden_dims": list(self.hidden_dims), "predictor_hidden_dims": list(self.predictor_hidden_dims),
                   "latent_dim": self.latent_dim, "variational": self.variational,
                   "members": [vars(m) for m in self.members], "provenance": provenance}  # encoder, predictor, calibration
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path) -> CellModel:
        """The cell model saved by `save` (InputError: the file cannot be read, or is not a cell model of this
        format)."""
        payload = load_tagged(path, CELL_MODEL_FORMAT, "cell model")
        return cls(genes=list(payload["genes"]), gene_mean=payload["gene_mean"].numpy(),
                   gene_sd=payload["gene_sd"].numpy(), hidden_dims=tuple(payload["hidden_dims"]),
                   predictor_hidden_dims=tuple(payload["predictor_hidden_dims"]), latent_dim=payload["latent_dim"],
                   variational=payload["variational"],
                   members=[MemberWeights(**m) for m in payload["members"]])
