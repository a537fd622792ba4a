"""Bulk cell lines as the models read them: one drug or a panel, always as lines × drugs. A single-drug preparation
(`bulk.prepare_bulk`: one `obs` label, a split stratified by it) and a screen's (`screen.prepare_screen`: `obsm`
labels with NaN where a line was not measured, a random split) become the same object, so the models have one code
path whatever the number of drugs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np

from . import keys
from .bulk import BulkPrepareConfig, prepare_bulk
from .readers import read_bulk_expression, read_responses
from .screen import prepare_screen

__all__ = ["BulkData"]


@dataclass
class BulkData:
    """Bulk expression with each drug's labels and continuous responses, the split, and the strata the
    split was drawn in (each ensemble member's bootstrap keeps them)."""

    adata: ad.AnnData            # lines × genes (log scale), as prepared
    drugs: list[str]
    labels: np.ndarray           # lines × drugs: 1 sensitive, 0 resistant, NaN unmeasured
    responses: np.ndarray        # lines × drugs: pooled z-scored continuous response, NaN where none
    strata: np.ndarray           # per line: the class the split was stratified by (0 for all when it was random)

    @classmethod
    def from_anndata(cls, adata: ad.AnnData) -> BulkData:
        """The lines of a prepared bulk AnnData (the bulk_prepare or screen_prepare step's h5ad)."""
        if keys.LABEL in adata.obsm:
            labels = np.asarray(adata.obsm[keys.LABEL], np.float32)
            return cls(adata, list(adata.uns[keys.SCREEN]["drugs"]), labels,
                       np.asarray(adata.obsm[keys.RESPONSE], np.float32), np.zeros(adata.n_obs, np.int64))
        label = adata.obs[keys.LABEL].to_numpy().astype(np.float32)
        response = adata.obs[keys.RESPONSE].to_numpy(np.float32) if keys.RESPONSE in adata.obs else \
            np.full(adata.n_obs, np.nan, np.float32)
        return cls(adata, [adata.uns[keys.BULK]["drug"]], label[:, None], response[:, None], label.astype(np.int64))

    @classmethod
    def read(cls, expression: str | Path, responses: str | Path | list, *, drugs: str | list[str] | None = None,
             config: BulkPrepareConfig | None = None) -> BulkData:
        """Bulk lines from an expression table and response tables (paths): one drug's lines, split within
        its classes, when `drugs` is a name; else a panel of those drugs (None: every drug of the tables)."""
        response = read_responses(responses)
        expression_lines = read_bulk_expression(expression, set(response["line"]))
        return cls.from_anndata(prepare_bulk(expression_lines, response, drugs, config=config) if isinstance(drugs, str)
                                else prepare_screen(expression_lines, response, drugs=drugs, config=config))

    @property
    def genes(self) -> list[str]:
        """The genes of the expression, in order."""
        return list(map(str, self.adata.var_names))

    @property
    def split(self) -> np.ndarray:
        """train / val / test per line."""
        return self.adata.obs[keys.SPLIT].to_numpy()

    @property
    def auc(self) -> np.ndarray:
        """Lines × drugs GDSC AUC as measured (a screen's; NaN where none)."""
        return self.measured(keys.AUC)

    @property
    def ln_ic50(self) -> np.ndarray:
        """Lines × drugs GDSC LN_IC50 as measured (a screen's; NaN where none)."""
        return self.measured(keys.LN_IC50)

    def measured(self, key: str) -> np.ndarray:
        """Lines × drugs of a screen's measured response `key` (all NaN where the preparation has none)."""
        if key in self.adata.obsm:
            return np.asarray(self.adata.obsm[key], np.float64)
        return np.full((self.adata.n_obs, len(self.drugs)), np.nan)

    def expression(self, genes: list[str] | None = None) -> np.ndarray:
        """Lines × `genes` (default: all) expression."""
        return self.adata.X if genes is None else self.adata[:, genes].X

    def column(self, drug: str | int) -> int:
        """The column of `drug` (its name or its position)."""
        return drug if isinstance(drug, int) else self.drugs.index(drug)
