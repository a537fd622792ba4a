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


def _pcs(n_cells: int = 300, n_pcs: int = 20, seed: int = 0) -> ad.AnnData:
    """Random PCs with a few duplicated cells (zero distances: the rho and self-column edge cases)."""
    x = np.random.default_rng(seed).normal(size=(n_cells, n_pcs)).astype(np.float32)
    x[5] = x[6] = x[7]
    adata = ad.AnnData(x)
    adata.obsm["X_pca"] = x
    return adata


@pytest.mark.parametrize("k", [15, 5])
def test_connectivities_are_scanpys(k):
    """The vectorised fuzzy simplicial set gives what `sc.pp.neighbors` (default, method 'umap') writes."""
    ours, theirs = _pcs(), _pcs()
    singlecell.neighbors(ours, k, 0)
    sc.pp.neighbors(theirs, n_neighbors=k, use_rep="X_pca", random_state=0)
    a, b = ours.obsp["connectivities"], theirs.obsp["connectivities"]
    assert a.dtype == b.dtype and ((a != 0) != (b != 0)).nnz == 0
    assert abs(a - b).max() < 1e-5
    assert (ours.obsp["distances"] != theirs.obsp["distances"]).nnz == 0
    assert ours.uns["neighbors"] == theirs.uns["neighbors"]


def test_connectivities_are_scanpys_with_approximate_neighbours(monkeypatch):
    monkeypatch.setattr(singlecell, "EXACT_KNN_MAX_CELLS", 100)
    ours, theirs = _pcs(), _pcs()
    singlecell.neighbors(ours, 15, 0)
    sc.pp.neighbors(theirs, use_rep="X_pca", transformer=singlecell.ApproximateKnn(15, 0))
    a, b = ours.obsp["connectivities"], theirs.obsp["connectivities"]
    assert ((a != 0) != (b != 0)).nnz == 0 and abs(a - b).max() < 1e-5
    assert (ours.obsp["distances"] != theirs.obsp["distances"]).nnz == 0


def test_smooth_knn_dist_is_umaps():
    from umap.umap_ import smooth_knn_dist
    rng = np.random.default_rng(1)
    d = np.sort(rng.exponential(1.0, (500, 15)).astype(np.float32), axis=1)
    d[:, 0] = 0
    d[:3] = 0  # no non-zero neighbour: the mean-distance floor
    d[3:6, :4] = 0  # duplicates before the first non-zero distance
    sigma, rho = singlecell.smooth_knn_dist(d, 15)
    want_sigma, want_rho = smooth_knn_dist(d, 15.0)
    np.testing.assert_array_equal(rho, want_rho)
    np.testing.assert_array_equal(sigma[rho > 0], want_sigma[rho > 0])
    # rows without a non-zero distance: umap's floor is a thread-dependent float32 reduction (memberships all 1)
    np.testing.assert_allclose(sigma[:3], want_sigma[:3], rtol=1e-5)


def test_leiden_clusters_are_scanpys(sim_paths):
    """On simulated cells: the same Leiden clusters from our graph as from scanpy's own `sc.pp.neighbors`."""
    cells = singlecell.preprocess_and_cluster(ad.read_h5ad(sim_paths["sample1"]),
                                              singlecell.ClusterConfig(n_top_genes=300))
    theirs = ad.AnnData(cells.X, obs=cells.obs[[]].copy(), obsm={"X_pca": cells.obsm["X_pca"]})
    sc.pp.neighbors(theirs, n_neighbors=15, use_rep="X_pca", random_state=0)
    sc.tl.leiden(theirs, resolution=0.5, key_added="cluster", flavor="igraph", n_iterations=2, directed=False,
                 random_state=0)
    assert abs(cells.obsp["connectivities"] - theirs.obsp["connectivities"]).max() < 1e-5
    assert cells.obs["cluster"].nunique() >= 2
    np.testing.assert_array_equal(cells.obs["cluster"].astype(str), theirs.obs["cluster"].astype(str))
