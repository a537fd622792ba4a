"""What keeps the transferred call pointing the way the bulk evidence points.

Marginal alignment (MMD) and the cluster loss score the same whichever cluster is called sensitive;
only bulk evidence fixes the direction. Three pieces hold it there, none of which reads a cell label:

- `anchor_loss`: each member's cell model stays rank-correlated with its own frozen source model
  (the bulk model refitted on the sample's genes, applied to the cells). Reordering cells within
  the source model's ranking is cheap; flipping it costs the most.
- `estimate_target_prior` + `prior_matched_weights`: the fraction of sensitive cells is estimated
  from the source model's calibrated probabilities (EM of Saerens et al., Neural Comput 2002), and
  bulk lines are drawn for the MMD in that class mix, so alignment under label shift (≈10 % sensitive
  lines, 30–50 % sensitive cells) does not push sensitive cells onto resistant lines.
- `oriented_like`: after training, a member whose cell ranking anticorrelates with its source
  model's is replaced by that source model (the guard of last resort, counted in the diagnostic).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

__all__ = ["anchor_loss", "cluster_anchor_loss", "estimate_target_prior", "oriented_like", "prior_matched_weights",
           "rank_correlation"]

PRIOR_BOUNDS = (0.02, 0.98)


def anchor_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 − Pearson correlation of two logit vectors over a batch (0: same order, 2: reversed); for
    cells × drugs logits, the mean over drugs of each drug's."""
    s = student.float() - student.float().mean(0)
    t = teacher.float() - teacher.float().mean(0)
    return 1.0 - ((s * t).sum(0) / (s.norm(dim=0) * t.norm(dim=0) + 1e-8)).mean()


def cluster_anchor_loss(student: torch.Tensor, teacher: torch.Tensor, clusters: torch.Tensor, *,
                        n_clusters: int) -> torch.Tensor:
    """1 − correlation, over the clusters present in the batch (weighted by their cells), of the
    cluster-mean logits of student and teacher: it fixes which clusters are the sensitive ones and
    leaves the order of cells within a cluster free. Fixed shapes (no host synchronisation)."""
    counts = torch.zeros(n_clusters, device=student.device).index_add_(0, clusters, torch.ones_like(student.float()))
    weight = counts / counts.sum()
    present = counts.clamp(min=1)
    s = torch.zeros(n_clusters, device=student.device).index_add_(0, clusters, student.float()) / present
    t = torch.zeros(n_clusters, device=student.device).index_add_(0, clusters, teacher.float()) / present
    s = s - (weight * s).sum()
    t = t - (weight * t).sum()
    cov = (weight * s * t).sum()
    return 1.0 - cov / (torch.sqrt((weight * s * s).sum() * (weight * t * t).sum()) + 1e-8)


def estimate_target_prior(prob: np.ndarray, source_prior: float, *, max_iter: int = 200, tol: float = 1e-6) -> float:
    """Fraction of sensitive cells by EM prior adjustment of probabilities calibrated to `source_prior`."""
    prob = np.clip(np.asarray(prob, np.float64), 1e-6, 1 - 1e-6)
    pi = source_prior
    for _ in range(max_iter):
        up, down = pi / source_prior, (1 - pi) / (1 - source_prior)
        new = float(np.mean(up * prob / (up * prob + down * (1 - prob))))
        new = min(max(new, PRIOR_BOUNDS[0]), PRIOR_BOUNDS[1])
        if abs(new - pi) < tol:
            break
        pi = new
    return pi


def prior_matched_weights(labels: np.ndarray, target_prior: float) -> np.ndarray:
    """Sampling weight per bulk line so that a weighted draw holds `target_prior` sensitive lines."""
    labels = np.asarray(labels)
    n_pos = max(int(labels.sum()), 1)
    n_neg = max(len(labels) - n_pos, 1)
    return np.where(labels == 1, target_prior / n_pos, (1 - target_prior) / n_neg)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation; NaN when either side is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def oriented_like(scores: np.ndarray, reference: np.ndarray) -> bool:
    """False only when `scores` rank the cells against `reference` (a constant side counts as agreeing)."""
    rho = rank_correlation(scores, reference)
    return not rho < 0
