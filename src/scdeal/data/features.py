"""Feature space shared by bulk and cells: the model's genes, each profile standardised across them.

Bulk cell lines and single cells live on different scales (array RMA vs UMI counts, library size,
dropout). Both sides are put in one space in two steps:
1. per profile: z-score across the model's genes (removes scale and library-size differences; the
   GDSC table in shared data is distributed this way);
2. per gene, per domain: centre and scale each gene with statistics of its own domain (bulk: the
   training lines; cells: the sample's cells). This removes gene-specific platform bias; no label is used.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError

log = logging.getLogger(__name__)
CLIP = 10.0


def looks_logged(x) -> bool:
    """True when values are already on a log (or standardised) scale: negatives, or a small maximum."""
    data = x.data if sp.issparse(x) else np.asarray(x)
    return data.size == 0 or float(np.nanmin(data)) < 0 or float(np.nanmax(data)) < 50


def data_scale(x) -> str:
    """`counts` (non-negative integers), `log` (non-negative, non-integer) or `scaled` (has negatives)."""
    data = x.data if sp.issparse(x) else np.asarray(x).ravel()
    sample = data[:: max(1, data.size // 200_000)]
    if sample.size and sample.min() < 0:
        return "scaled"
    if sample.size and np.allclose(sample, np.round(sample)):
        return "counts"
    return "log"


def align_genes(names, model_genes, min_overlap: int, what: str) -> np.ndarray:
    """Indices into `names` of the model genes present; error below `min_overlap` genes."""
    position = {g: i for i, g in enumerate(names)}
    present = [g for g in model_genes if g in position]
    log.info("%s: %d of %d model genes present (%.0f %%)", what, len(present), len(model_genes),
             100 * len(present) / max(len(model_genes), 1))
    if len(present) < min_overlap:
        raise InputError(f"{what} shares only {len(present)} genes with the bulk model (minimum {min_overlap}): "
                         "check that genes are HGNC symbols of the right species (mouse samples need "
                         "species=mouse), or lower --min_gene_overlap at your own risk.")
    return np.array([position[g] for g in present])


def row_standardise(x) -> np.ndarray:
    """Dense float32 rows z-scored across columns (sparse input is densified row block by row block)."""
    x = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float32)
    x = x.astype(np.float32, copy=False)
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return (x - mean) / np.where(sd > 0, sd, 1.0)


def gene_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    return mean.astype(np.float32), np.where(sd > 1e-6, sd, 1.0).astype(np.float32)


def apply_gene_stats(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.clip((x - mean) / sd, -CLIP, CLIP).astype(np.float32)


def model_features(x, stats: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, tuple]:
    """Both standardisation steps; fits gene statistics on `x` unless `stats` are given."""
    rows = row_standardise(x)
    stats = stats if stats is not None else gene_stats(rows)
    return apply_gene_stats(rows, *stats), stats

BLOCK = 8192


class CellFeatures:
    """Model features of cells: genes subset, rows z-scored, genes standardised with the sample's own
    statistics (computed in one streaming pass). `batch(idx)` densifies only the rows asked for."""

    def __init__(self, x, gene_index: np.ndarray):
        self.x = sp.csr_matrix(x, dtype=np.float32)[:, gene_index] if sp.issparse(x) else \
            np.asarray(x, dtype=np.float32)[:, gene_index]
        self.n = self.x.shape[0]
        self.mean, self.sd = self._streaming_gene_stats()

    def _streaming_gene_stats(self) -> tuple[np.ndarray, np.ndarray]:
        total = np.zeros(self.x.shape[1], np.float64)
        total_sq = np.zeros(self.x.shape[1], np.float64)
        for start in range(0, self.n, BLOCK):
            rows = row_standardise(self.x[start:start + BLOCK])
            total += rows.sum(0)
            total_sq += (rows.astype(np.float64) ** 2).sum(0)
        mean = total / self.n
        sd = np.sqrt(np.maximum(total_sq / self.n - mean ** 2, 0))
        return mean.astype(np.float32), np.where(sd > 1e-6, sd, 1.0).astype(np.float32)

    def numpy(self, idx) -> np.ndarray:
        rows = row_standardise(self.x[idx])
        return np.clip((rows - self.mean) / self.sd, -CLIP, CLIP).astype(np.float32)

    def batch(self, idx, device: torch.device) -> torch.Tensor:
        tensor = torch.from_numpy(self.numpy(idx))
        if device.type == "cuda":
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor

    def blocks(self, size: int = BLOCK):
        for start in range(0, self.n, size):
            yield np.arange(start, min(start + size, self.n))
