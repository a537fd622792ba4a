"""What keeps the transferred call pointing the way the bulk evidence points.

Marginal alignment (MMD) and the cluster loss score the same whichever cluster is called sensitive;
only bulk evidence fixes the direction. Three pieces hold it there, none of which reads a cell label:

- `anchor_loss` (or `cluster_anchor_loss` per cluster): each member's cell scores stay correlated, drug by
  drug, with its anchor: by default the signature of its bootstrap of bulk lines scored on each cell
  (`signature.py`), else its direct model (the bulk model refitted on the sample's genes). Reordering
  cells within the anchor's ranking is cheap; flipping it costs the most.
- `estimate_target_prior` + `prior_matched_weights`: the fraction of sensitive cells is estimated
  from the direct model's calibrated probabilities (EM of Saerens et al., Neural Comput 2002), and
  bulk lines can be drawn for the MMD in that class mix (`--mmd_class_mix estimated`, off by default).
- `oriented_like`: after training, a member whose cell ranking for a drug anticorrelates with its anchor
  keeps its direct model for that drug (the guard of last resort, counted in the diagnostic).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

__all__ = ["anchor_loss", "cluster_anchor_loss", "estimate_target_prior", "oriented_like", "prior_matched_weights",
           "rank_correlation"]

PRIOR_BOUNDS = (0.02, 0.98)


def anchor_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 − Pearson correlation of student and teacher scores over a batch (0: same order, 2: reversed), per
    drug column, then the mean over drugs."""
    s = student.float() - student.float().mean(0)
    t = teacher.float() - teacher.float().mean(0)
    return 1.0 - ((s * t).sum(0) / (s.norm(dim=0) * t.norm(dim=0) + 1e-8)).mean()


def cluster_anchor_loss(student: torch.Tensor, teacher: torch.Tensor, clusters: torch.Tensor, *,
                        n_clusters: int) -> torch.Tensor:
    """1 − correlation, over the clusters present in the batch (weighted by their cells), of the
    cluster-mean scores of student and teacher (per drug column, then the mean over drugs): it fixes which
    clusters are the sensitive ones and leaves the order of cells within a cluster free. Fixed shapes (no
    host synchronisation)."""
    student, teacher = student.float().reshape(len(student), -1), teacher.float().reshape(len(teacher), -1)
    counts = torch.zeros(n_clusters, device=student.device).index_add_(0, clusters, torch.ones_like(student[:, 0]))
    weight = (counts / counts.sum())[:, None]
    present = counts.clamp(min=1)[:, None]

    def centred_means(scores: torch.Tensor) -> torch.Tensor:
        means = torch.zeros(n_clusters, scores.shape[1], device=scores.device).index_add_(0, clusters, scores) / present
        return means - (weight * means).sum(0)

    s, t = centred_means(student), centred_means(teacher)
    cov = (weight * s * t).sum(0)
    return (1.0 - cov / (torch.sqrt((weight * s * s).sum(0) * (weight * t * t).sum(0)) + 1e-8)).mean()


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
