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
from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import batch_slices, gene_positions
from ..errors import InputError

log = logging.getLogger(__name__)

__all__ = ["BLOCK", "CLIP", "CellFeatures", "DataScale", "align_genes", "apply_gene_stats", "data_scale",
           "model_features", "row_standardise"]

CLIP = 10.0          # standardised values are clipped to ±CLIP
BLOCK = 8192         # cells densified at once
DENSE_CACHE_BYTES = 256 * 2 ** 20  # samples whose features fit are standardised once, not in every batch
LINEAR_MAX = 50.0    # a non-negative matrix whose largest value reaches this is not on a log scale
DataScale = Literal["counts", "linear", "log", "scaled"]


def data_scale(x) -> DataScale:
    """The scale of an expression matrix, the one check bulk and single-cell inputs share: `scaled` (has
    negatives), `counts` (non-negative integers), `linear` (non-negative, not integer, largest value ≥ 50: e.g.
    TPM) or `log` (non-negative, not integer, small values)."""
    data = x.data if sp.issparse(x) else np.asarray(x).ravel()
    if data.size == 0:
        return "log"
    if float(np.nanmin(data)) < 0:
        return "scaled"
    sample = data[:: max(1, data.size // 200_000)]  # integer check on a sample: it is the costly one
    if np.allclose(sample, np.round(sample)):
        return "counts"
    return "linear" if float(np.nanmax(data)) >= LINEAR_MAX else "log"


def align_genes(names, model_genes, *, min_overlap: int, what: str) -> np.ndarray:
    """Indices into `names` of the model genes present, in the model's order (InputError: fewer than `min_overlap`
    model genes are present)."""
    positions = gene_positions(names, model_genes)
    present = positions[positions >= 0]
    log.info("%s: %d of %d model genes present (%.0f %%)", what, len(present), len(positions),
             100 * len(present) / max(len(positions), 1))
    if len(present) < min_overlap:
        raise InputError(f"{what} shares only {len(present)} genes with the bulk model (minimum {min_overlap}): "
                         "check that genes are HGNC symbols of the right species (mouse samples need "
                         "species=mouse), or lower --min_gene_overlap at your own risk.")
    return present


def row_standardise(x) -> np.ndarray:
    """Dense float32 rows z-scored across columns (sparse input is densified row block by row block)."""
    x = (x.toarray() if sp.issparse(x) else np.asarray(x)).astype(np.float32, copy=False)
    sd = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def floored_sd(sd: np.ndarray) -> np.ndarray:
    """Gene standard deviations as float32, a constant gene's (≤ 1e-6) replaced by 1 (it stays at 0)."""
    return np.where(sd > 1e-6, sd, 1.0).astype(np.float32)


def apply_gene_stats(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Columns standardised with the given statistics, clipped to ±CLIP (float32)."""
    return np.clip((x - mean) / sd, -CLIP, CLIP).astype(np.float32)


def model_features(x, stats: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, tuple]:
    """Both standardisation steps; fits the gene statistics (each column's mean and floored standard deviation)
    on `x` unless `stats` are given."""
    rows = row_standardise(x)
    stats = stats if stats is not None else (rows.mean(axis=0).astype(np.float32), floored_sd(rows.std(axis=0)))
    return apply_gene_stats(rows, *stats), stats


class CellFeatures:
    """Model features of cells: genes subset, rows z-scored, genes standardised with the sample's own
    statistics (computed in one streaming pass unless given). A sample whose features fit in
    DENSE_CACHE_BYTES is standardised once; a larger one is densified batch by batch, only the rows asked for."""

    def __init__(self, x, gene_index: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None = None):
        self.x = sp.csr_matrix(x, dtype=np.float32)[:, gene_index] if sp.issparse(x) else \
            np.asarray(x, dtype=np.float32)[:, gene_index]
        self.n = self.x.shape[0]
        self.mean, self.sd = stats if stats is not None else self._streaming_gene_stats()
        self.dense = None
        if self.n * self.x.shape[1] * 4 <= DENSE_CACHE_BYTES:
            self.dense = np.vstack([self.numpy(rows) for rows in self.blocks()]) if self.n else \
                np.zeros(self.x.shape, np.float32)

    def _streaming_gene_stats(self) -> tuple[np.ndarray, np.ndarray]:
        total = np.zeros(self.x.shape[1], np.float64)
        total_sq = np.zeros(self.x.shape[1], np.float64)
        for rows in batch_slices(self.n, BLOCK):
            standardised = row_standardise(self.x[rows])
            total += standardised.sum(0)
            total_sq += (standardised.astype(np.float64) ** 2).sum(0)
        mean = total / self.n
        sd = np.sqrt(np.maximum(total_sq / self.n - mean ** 2, 0))
        return mean.astype(np.float32), floored_sd(sd)

    def numpy(self, idx) -> np.ndarray:
        """Model features of the cells at `idx` (a slice or indices) as a new float32 array."""
        if self.dense is not None:
            rows = self.dense[idx]
            return rows.copy() if isinstance(idx, slice) else rows
        return apply_gene_stats(row_standardise(self.x[idx]), self.mean, self.sd)

    def batch(self, idx, device: torch.device) -> torch.Tensor:
        """Model features of the cells at `idx` as a tensor on `device` (pinned for a GPU)."""
        tensor = torch.from_numpy(self.numpy(idx))
        return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor

    def blocks(self, size: int = BLOCK) -> Iterator[slice]:
        """Consecutive blocks of at most `size` cells covering the sample."""
        return batch_slices(self.n, size)
