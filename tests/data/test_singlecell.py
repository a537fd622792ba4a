"""Clustering paths of single-cell samples, small and very large."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

from scdeal.data import singlecell


@pytest.mark.slow
def test_large_samples_get_a_neighbour_graph():
    """Above a few thousand cells scanpy switches kNN method; both paths must build the graph."""

    from scdeal.data.singlecell import ApproximateKnn, knn_transformer
    adata = ad.AnnData(np.random.default_rng(0).random((9000, 10), dtype=np.float32))
    adata.obsm["X_pca"] = adata.X
    for transformer in (knn_transformer(adata.n_obs, 10, 0), ApproximateKnn(10, 0)):
        sc.pp.neighbors(adata, n_neighbors=10, use_rep="X_pca", transformer=transformer)
        assert adata.obsp["connectivities"].shape == (9000, 9000)


def test_very_large_samples_take_the_scalable_clustering_path(sim_paths, monkeypatch):
    """Above the exact-kNN limit: approximate neighbours and a UMAP started from the PCs, not spectral."""

    monkeypatch.setattr(singlecell, "EXACT_KNN_MAX_CELLS", 100)
    cells = singlecell.preprocess_and_cluster(ad.read_h5ad(sim_paths["sample1"]), singlecell.ClusterConfig(n_top_genes=300))
    assert isinstance(singlecell.knn_transformer(cells.n_obs, 15, 0), singlecell.ApproximateKnn)
    start = singlecell.umap_init(cells.obsm["X_pca"])
    assert start.shape == (cells.n_obs, 2) and np.isclose(np.abs(start).max(), 10.0)
    assert np.isfinite(cells.obsm["X_umap"]).all() and cells.obs["cluster"].nunique() >= 2
