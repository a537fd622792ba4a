"""Networks and loss terms: bulk autoencoder (AE / denoising AE / VAE), response predictor, MMD, cluster loss."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

ENCODER_KINDS = ("ae", "dae", "vae")


def mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """genes → hidden layers → bottleneck z. A variational encoder returns its mean as the embedding."""

    def __init__(self, n_genes: int, hidden: tuple[int, ...], latent: int, dropout: float, variational: bool):
        super().__init__()
        self.body = mlp([n_genes, *hidden], dropout)
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent) if variational else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu(self.body(x))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        return self.mu(h), (self.logvar(h) if self.logvar is not None else None)

    def first_layer(self) -> nn.Linear:
        return self.body[0]


class Decoder(nn.Module):
    def __init__(self, n_genes: int, hidden: tuple[int, ...], latent: int, dropout: float):
        super().__init__()
        self.body = mlp([latent, *reversed(hidden)], dropout)
        self.out = nn.Linear(hidden[0], n_genes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))


class Predictor(nn.Module):
    """Bottleneck → one logit of sensitivity (sigmoid gives the probability; trained with BCE)."""

    def __init__(self, latent: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        self.body = mlp([latent, *hidden], dropout)
        self.out = nn.Linear(hidden[-1], 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z)).squeeze(-1)


def autoencoder_loss(encoder: Encoder, decoder: Decoder, x: torch.Tensor, kind: str, noise: float,
                     kl_weight: float = 1e-3) -> dict[str, torch.Tensor]:
    """Reconstruction (+ KL for the VAE). The denoising AE corrupts a copy; the target stays clean."""
    inp = x
    if kind == "dae":
        keep = (torch.rand_like(x) > noise).to(x.dtype)
        inp = x * keep
    mu, logvar = encoder.distribution(inp)
    z = mu
    terms = {}
    if kind == "vae":
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        terms["kl"] = kl_weight * (-0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)))
    terms["recon"] = F.mse_loss(decoder(z), x)
    return terms


def mmd(a: torch.Tensor, b: torch.Tensor, scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> torch.Tensor:
    """Maximum mean discrepancy with RBF kernels at several multiples of the median squared distance.

    Bandwidths follow the data, so the kernel never saturates at ≈ 1 whatever the embedding's scale.
    Shapes stay fixed (no boolean indexing), so on a GPU no step waits for the host.
    """
    a, b = a.float(), b.float()
    joint = torch.cat([a, b])
    d2 = torch.cdist(joint, joint).pow(2)
    rows, cols = torch.triu_indices(len(joint), len(joint), offset=1, device=joint.device)
    median = d2.detach()[rows, cols].median().clamp_min(1e-12)
    kernel = sum(torch.exp(-d2 / (s * median)) for s in scales) / len(scales)
    n = a.shape[0]
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def cluster_loss(z: torch.Tensor, clusters: torch.Tensor, n_clusters: int | None = None) -> torch.Tensor:
    """Within-cluster spread of the embedding relative to its total spread (scale-free).

    Acts on the embedding and carries gradients into the encoder, so cells of one Leiden cluster
    stay together while the domains are aligned. `clusters` are codes 0..n_clusters-1; passing
    `n_clusters` keeps every shape fixed (no host synchronisation on a GPU).
    """
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
