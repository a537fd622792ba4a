"""Cell features computed batch by batch from the sparse matrix, so cells × genes is never dense."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .preprocess import CLIP, row_standardise

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
