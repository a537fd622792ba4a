"""Networks and their loss terms: bulk autoencoder (AE / denoising AE / VAE), output heads (the sensitivity
classifier and the continuous-response regressor), response loss, MMD and cluster loss."""
from __future__ import annotations

import copy
import functools
from itertools import pairwise
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ENCODER_KINDS", "Decoder", "Encoder", "EncoderKind", "Head", "autoencoder_loss", "cluster_loss",
           "encoder_on_genes", "masked_bce", "masked_mse", "mlp", "mmd", "response_terms", "weighted_response_loss"]

EncoderKind = Literal["ae", "dae", "vae"]
ENCODER_KINDS: tuple[str, ...] = get_args(EncoderKind)


def mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Linear → ReLU → Dropout for each consecutive pair of `sizes`."""
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """genes → hidden layers → bottleneck z. A variational encoder returns its mean as the embedding."""

    def __init__(self, n_genes: int, hidden_dims: tuple[int, ...], latent_dim: int, *, dropout: float,
                 variational: bool):
        super().__init__()
        self.body = mlp([n_genes, *hidden_dims], dropout)
        self.mu = nn.Linear(hidden_dims[-1], latent_dim)
        self.logvar = nn.Linear(hidden_dims[-1], latent_dim) if variational else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding of `x` (a variational encoder's mean)."""
        return self.mu(self.body(x))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean and log-variance (None unless variational) of the embedding of `x`."""
        h = self.body(x)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)

    def first_layer(self) -> nn.Linear:
        """The layer reading the genes."""
        return self.body[0]


class Head(nn.Module):
    """Bottleneck → hidden layers (none: a linear read-out) → one number per profile and drug. The bulk model has two:
    the classifier (the logit of sensitivity; sigmoid gives the probability, trained with BCE) and the regressor of
    the continuous response (trained with MSE)."""

    def __init__(self, latent_dim: int, hidden_dims: tuple[int, ...], *, dropout: float, n_out: int = 1):
        super().__init__()
        sizes = [latent_dim, *hidden_dims]
        self.body = mlp(sizes, dropout)
        self.out = nn.Linear(sizes[-1], n_out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Rows × outputs (drugs; a decoder's genes)."""
        return self.out(self.body(z))


class Decoder(Head):
    """Bottleneck z → hidden layers (the encoder's, reversed) → genes."""

    def __init__(self, n_genes: int, hidden_dims: tuple[int, ...], latent_dim: int, *, dropout: float):
        super().__init__(latent_dim, tuple(reversed(hidden_dims)), dropout=dropout, n_out=n_genes)


def autoencoder_loss(encoder: Encoder, decoder: Decoder, x: torch.Tensor, *, kind: EncoderKind, noise: float,
                     kl_weight: float) -> dict[str, torch.Tensor]:
    """Reconstruction (+ KL for the VAE). The denoising AE corrupts a copy; the target stays clean."""
    mu, logvar = encoder.distribution(x * (torch.rand_like(x) > noise).to(x.dtype) if kind == "dae" else x)
    z, terms = mu, {}
    if kind == "vae":
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        terms["kl"] = kl_weight * (-0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)))
    terms["recon"] = F.mse_loss(decoder(z), x)
    return terms


MMD_WIDEST = 4.0   # the RBF kernels' bandwidths: 4, 2, 1, 1/2 and 1/4 times the median squared distance
MMD_KERNELS = 5


@functools.lru_cache(maxsize=8)
def pair_indices(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of the upper triangle of an n × n matrix: every batch of a run has the same size, so
    they are built once (building them cost a sixth of the MMD)."""
    rows, cols = torch.triu_indices(n, n, offset=1, device=device)
    return rows, cols


def mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Maximum mean discrepancy with RBF kernels at several multiples of the median squared distance. Bandwidths
    follow the data, so the kernel never saturates at ≈ 1 whatever the embedding's scale. Shapes stay fixed (no
    boolean indexing), so on a GPU no step waits for the host."""
    a, b = a.float(), b.float()
    joint = torch.cat([a, b])
    squares = joint.pow(2).sum(1)
    d2 = (squares[:, None] + squares[None, :] - 2 * joint @ joint.T).clamp_min(0)
    rows, cols = pair_indices(len(joint), joint.device)
    median = d2.detach()[rows, cols].median().clamp_min(1e-12)
    kernel = torch.exp(-d2 / (MMD_WIDEST * median))
    total = kernel
    for _ in range(MMD_KERNELS - 1):  # halving the bandwidth squares the kernel: one exp for all five
        kernel = kernel * kernel
        total = total + kernel
    total = total / MMD_KERNELS
    n = a.shape[0]
    return total[:n, :n].mean() + total[n:, n:].mean() - 2 * total[:n, n:].mean()


def cluster_loss(z: torch.Tensor, clusters: torch.Tensor, n_clusters: int | None = None) -> torch.Tensor:
    """Within-cluster spread of the embedding relative to its total spread (scale-free). Acts on the embedding and
    carries gradients into the encoder, so cells of one Leiden cluster stay together while the domains are aligned.
    `clusters` are codes 0..n_clusters-1; passing `n_clusters` keeps every shape fixed (no host synchronisation on a
    GPU)."""
    z = z.float()
    k = n_clusters if n_clusters is not None else int(clusters.max()) + 1
    sums = torch.zeros(k, z.shape[1], device=z.device).index_add_(0, clusters, z)
    counts = torch.zeros(k, device=z.device).index_add_(0, clusters, torch.ones_like(z[:, 0]))
    centroids = sums / counts.clamp(min=1).unsqueeze(1)
    within = (z - centroids[clusters]).pow(2).sum(1).mean()
    total = (z - z.mean(0)).pow(2).sum(1).mean()
    return within / (total + 1e-8)


def encoder_on_genes(encoder: Encoder, gene_index: torch.Tensor) -> Encoder:
    """A copy of `encoder` reading only the genes at `gene_index` (its first layer's columns)."""
    sub = copy.deepcopy(encoder)
    first = sub.first_layer()
    new = nn.Linear(len(gene_index), first.out_features)
    with torch.no_grad():
        new.weight.copy_(first.weight[:, gene_index])
        new.bias.copy_(first.bias)
    sub.body[0] = new
    return sub


def masked_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the lines that have a continuous response (NaN elsewhere); 0 if none.
    Masked arithmetic rather than boolean indexing: no host synchronisation on a GPU."""
    valid = ~torch.isnan(target)
    diff = torch.where(valid, output.float() - torch.nan_to_num(target), torch.zeros_like(target))
    return diff.pow(2).sum() / valid.sum().clamp(min=1)


def masked_bce(logits: torch.Tensor, label: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """Weighted BCE over the (line, drug) pairs that have a label (NaN elsewhere); 0 if none."""
    valid = ~torch.isnan(label)
    loss = F.binary_cross_entropy_with_logits(logits.float(), torch.nan_to_num(label), pos_weight=pos_weight,
                                              reduction="none")
    return torch.where(valid, loss, torch.zeros_like(loss)).sum() / valid.sum().clamp(min=1)


def response_terms(classifier: Head, regressor: Head, z: torch.Tensor, *, label: torch.Tensor,
                   response: torch.Tensor, pos_weight: torch.Tensor, w_response: float) -> dict[str, torch.Tensor]:
    """The response loss terms on bulk embeddings `z`, shared by pretraining and the transfer's bulk term: `bce`
    of the classifier (weighted by `pos_weight`, one per drug) over the measured pairs of `label` (lines × drugs:
    1 sensitive, 0 resistant, NaN unmeasured) and, when `w_response` > 0, `response_mse` of the regressor against
    `response` (lines × drugs z-scored continuous responses, NaN where none)."""
    terms = {"bce": masked_bce(classifier(z), label, pos_weight)}
    if w_response > 0:
        terms["response_mse"] = masked_mse(regressor(z), response)
    return terms


def weighted_response_loss(terms: dict[str, torch.Tensor], w_response: float) -> torch.Tensor:
    """BCE plus `w_response` times the regression's MSE (when there is one)."""
    return terms["bce"] + w_response * terms.get("response_mse", 0.0)
