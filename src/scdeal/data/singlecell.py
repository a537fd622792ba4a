"""Single-cell preprocessing and clustering (scanpy): QC, normalisation, HVGs, PCA, Leiden, UMAP."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from .._utils import setting
from ..errors import InputError
from .features import DataScale, data_scale
from .keys import CLUSTER, CLUSTER_INFO

log = logging.getLogger(__name__)


__all__ = ["ClusterConfig", "embed_and_cluster", "preprocess_and_cluster", "quality_control", "select_variable_genes"]


@dataclass(frozen=True)
class ClusterConfig:
    """QC, variable genes, embedding and Leiden clustering of one sample (the cluster step's flags)."""

    min_genes: int = setting(200, "QC: drop cells with fewer detected genes", minimum=0)
    min_cells: int = setting(3, "QC: drop genes detected in fewer cells", minimum=0)
    max_pct_mito: float = setting(30.0, "QC: drop cells above this % of mitochondrial counts", minimum=0, maximum=100,
                                  details="Cancer cell lines carry more mitochondrial reads than tissue; 5 % (the "
                                          "reference's default) removed half of the PC9 cells, unevenly between labels.")
    n_top_genes: int = setting(2000, "highly variable genes for PCA", minimum=10)
    n_pcs: int = setting(30, "principal components", minimum=2)
    n_neighbors: int = setting(15, "neighbours in the kNN graph", minimum=2)
    resolution: float = setting(0.5, "Leiden resolution", minimum=0)
    seed: int = setting(0, "random seed of PCA, neighbours, Leiden and UMAP")


def quality_control(adata: ad.AnnData, p: ClusterConfig) -> dict:
    """Filter cells and genes of counts data in place; report what each filter dropped. Sets `var['mt']` and
    scanpy's QC metrics in `obs` and `var` (`n_genes_by_counts`, `pct_counts_mt`, …)."""
    n_in = adata.n_obs
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    low_genes = adata.obs["n_genes_by_counts"] < p.min_genes
    high_mito = adata.obs["pct_counts_mt"] > p.max_pct_mito
    keep = ~(low_genes | high_mito)
    report = {"cells_in": n_in, "dropped_min_genes": int(low_genes.sum()),
              "dropped_max_pct_mito": int((high_mito & ~low_genes).sum())}
    if keep.sum() == 0:
        raise InputError(f"QC removed every cell ({report}): lower --min_genes or raise --max_pct_mito.")
    adata._inplace_subset_obs(keep.to_numpy())
    genes_before = adata.n_vars
    sc.pp.filter_genes(adata, min_cells=p.min_cells)
    report.update(cells_after_qc=int(adata.n_obs), genes_in=int(genes_before), genes_after_qc=int(adata.n_vars))
    log.info("QC: %d → %d cells (%d below %d genes, %d above %.0f %% mito)", n_in, adata.n_obs,
             report["dropped_min_genes"], p.min_genes, report["dropped_max_pct_mito"], p.max_pct_mito)
    return report


def preprocess_and_cluster(adata: ad.AnnData, p: ClusterConfig | None = None) -> ad.AnnData:
    """QC (counts only), normalise+log1p (counts only), HVGs, PCA, neighbours, Leiden, UMAP. Works in place (cells
    failing QC are dropped) and returns `adata`. Sets `X`: log-normalised expression (the input as given when it was
    not counts); `layers['counts']`: the raw counts (counts input only); `var['highly_variable']`; `obs['cluster']`
    (Leiden); `obsm['X_pca']`, `obsm['X_umap']`; `obsp['distances']`, `obsp['connectivities']`;
    `uns['scdeal_cluster']` (parameters, input scale, QC report, number of clusters)."""
    p = p or ClusterConfig()
    scale = data_scale(adata.X)
    log.info("input scale detected: %s", scale)
    if scale == "counts":
        qc = quality_control(adata, p)
        adata.layers["counts"] = adata.X.copy()
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    else:
        log.info("input is not counts (%s): no QC on counts, no normalisation", scale)
        qc = {"cells_in": adata.n_obs, "cells_after_qc": adata.n_obs, "genes_in": adata.n_vars,
              "genes_after_qc": adata.n_vars, "dropped_min_genes": 0, "dropped_max_pct_mito": 0}
    if adata.n_obs < 10:
        raise InputError(f"Only {adata.n_obs} cells remain: at least 10 are needed to cluster and predict.")
    select_variable_genes(adata, p.n_top_genes, scale)
    embed_and_cluster(adata, p)
    adata.uns[CLUSTER_INFO] = {"params": asdict(p), "input_scale": scale, "qc": qc,
                               "n_clusters": int(adata.obs[CLUSTER].nunique())}
    return adata


def select_variable_genes(adata: ad.AnnData, n_top: int, scale: DataScale) -> None:
    """Mark the `n_top` most variable genes (Seurat dispersion; variance for scaled data) in
    `var['highly_variable']` (and scanpy's dispersion columns for unscaled data)."""
    n_top = min(n_top, adata.n_vars)
    if scale == "scaled":
        # Seurat-style dispersion needs non-negative data: rank scaled data by variance instead.
        x = adata.X
        var = np.asarray(x.power(2).mean(0)).ravel() - np.asarray(x.mean(0)).ravel() ** 2 if sp.issparse(x) \
            else np.asarray(x).var(0)
        adata.var["highly_variable"] = np.isin(np.arange(adata.n_vars), np.argsort(-var)[:n_top])
    else:
        sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor="seurat")


EXACT_KNN_MAX_CELLS = 200_000
# UMAP's layout epochs: umap-learn's own figure for more than 10,000 cells, at every size. The layout only draws the
# report's pictures, and 500 epochs (its figure for small samples) cost 2.5 times as much for the same picture.
UMAP_EPOCHS = 200


class ApproximateKnn(TransformerMixin, BaseEstimator):
    """pynndescent kNN graph as a scipy sparse *matrix*: scanpy 1.11 fails on the sparse array that
    current pynndescent/scipy return ('csr_array' object has no attribute 'getnnz')."""

    def __init__(self, n_neighbors: int = 15, random_state: int = 0):
        self.n_neighbors, self.random_state = n_neighbors, random_state

    def fit(self, x, y=None):
        """Nothing to fit: the graph is built in `fit_transform`."""
        return self

    def fit_transform(self, x, y=None):
        """The kNN distance graph of the rows of `x` as a scipy CSR matrix."""
        from pynndescent import PyNNDescentTransformer
        graph = PyNNDescentTransformer(n_neighbors=self.n_neighbors, random_state=self.random_state).fit_transform(x)
        return sp.csr_matrix(graph)


def knn_transformer(n_cells: int, k: int, seed: int):
    """Exact neighbours (fast below a few hundred thousand cells), approximate beyond."""
    return "sklearn" if n_cells <= EXACT_KNN_MAX_CELLS else ApproximateKnn(k, seed)


def embed_and_cluster(adata: ad.AnnData, p: ClusterConfig) -> None:
    """PCA on the variable genes, kNN graph, Leiden clusters and UMAP, in place: `obsm['X_pca']`,
    `obsp['distances']`, `obsp['connectivities']`, `obs['cluster']`, `obsm['X_umap']` and scanpy's `uns` entries."""
    # PCA centres sparse HVG data implicitly: cells × HVGs is never densified.
    hvg = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    n_pcs = max(2, min(p.n_pcs, hvg.n_obs - 1, hvg.n_vars - 1))
    sc.tl.pca(hvg, n_comps=n_pcs, random_state=p.seed)
    adata.obsm["X_pca"] = hvg.obsm["X_pca"]
    del hvg
    k = min(p.n_neighbors, adata.n_obs - 1)
    neighbors(adata, k, p.seed)
    sc.tl.leiden(adata, resolution=p.resolution, key_added=CLUSTER, flavor="igraph", n_iterations=2,
                 directed=False, random_state=p.seed)
    graph = adata.obsp["connectivities"].copy()  # umap-learn drops the edges below max / epochs in place
    sc.tl.umap(adata, random_state=p.seed, init_pos=umap_init(adata.obsm["X_pca"]), maxiter=UMAP_EPOCHS)
    adata.obsp["connectivities"] = graph


def neighbors(adata: ad.AnnData, k: int, seed: int) -> None:
    """What `sc.pp.neighbors(adata, n_neighbors=k, use_rep='X_pca', random_state=seed,
    transformer=knn_transformer(...))` writes (`obsp['distances']`, `obsp['connectivities']`, `uns['neighbors']`),
    with UMAP's connectivities computed by `fuzzy_simplicial_set` below: scanpy's path through umap-learn compiles
    numba functions that are not cached, ~9 s in every fresh process. As in scanpy, `k` counts the cell itself."""
    from scanpy.neighbors._common import _get_indices_distances_from_sparse_matrix, _get_sparse_matrix_from_indices_distances
    from sklearn.neighbors import KNeighborsTransformer

    transformer = knn_transformer(adata.n_obs, k, seed)
    exact = transformer == "sklearn"  # scanpy's "shortcut": brute-force sklearn, self column dropped after
    if exact:
        transformer = KNeighborsTransformer(algorithm="brute", n_jobs=sc.settings.n_jobs,
                                            n_neighbors=min(adata.n_obs - 1, k), metric="euclidean", metric_params={})
    else:
        k = transformer.get_params()["n_neighbors"]
    distances = transformer.fit_transform(adata.obsm["X_pca"])
    knn_indices, knn_dists = _get_indices_distances_from_sparse_matrix(distances, k)
    if exact:
        # as scanpy: zero the self-distances (brute force gives ~1e-7), which `knn_dists`, a view of
        # `distances.data`, sees too; otherwise the cell itself would be its own nearest non-zero neighbour (rho)
        distances[np.diag_indices_from(distances)] = 0
        distances = _get_sparse_matrix_from_indices_distances(knn_indices, knn_dists, keep_self=False)
    adata.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances",
                              "params": {"n_neighbors": k, "method": "umap", "random_state": seed,
                                         "metric": "euclidean", "use_rep": "X_pca"}}
    adata.obsp["distances"] = distances
    adata.obsp["connectivities"] = fuzzy_simplicial_set(knn_indices, knn_dists, n_obs=adata.n_obs, n_neighbors=k)


def smooth_knn_dist(knn_dists: np.ndarray, n_neighbors: int, n_iter: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's `smooth_knn_dist` (local_connectivity 1, bandwidth 1), all rows at once: per row, rho (the
    nearest non-zero distance) and sigma, binary-searched until sum_j exp(-(d_j - rho)/sigma) over the neighbours
    (the first column, the cell itself, left out) is log2(k) within 1e-5. The same arithmetic in the same order as
    umap's numba loop: d_j - rho in float32, the rest in float64 (umap's float32 `locals` do not reach the body of
    its `prange` loop), the sum in column order; sigma and rho returned as float32."""
    d = np.ascontiguousarray(knn_dists, dtype=np.float32)
    n, k = d.shape
    target = np.log2(float(n_neighbors))
    floatmax = float(np.finfo(np.float32).max)
    positive = d > 0
    rho = np.where(positive.any(axis=1), d[np.arange(n), positive.argmax(axis=1)], 0).astype(np.float32)
    lo = np.zeros(n)
    hi = np.full(n, floatmax)
    mid = np.ones(n)
    active = np.ones(n, bool)
    above = (d[:, 1:] - rho[:, None]).astype(np.float64)  # float32 difference, as umap's d
    pos = above > 0
    for _ in range(n_iter):
        if not active.any():
            break
        with np.errstate(over="ignore"):
            terms = np.where(pos, np.exp(-(above / mid[:, None])), 1.0)
        psum = np.zeros(n)
        for j in range(k - 1):  # umap sums the neighbours in order
            psum += terms[:, j]
        active &= ~(np.abs(psum - target) < 1e-5)  # SMOOTH_K_TOLERANCE: that row stops here
        down = active & (psum > target)
        up = active & ~down
        hi[down] = mid[down]
        lo[up] = mid[up]
        double = up & (hi >= floatmax)
        halve = down | (up & ~double)
        mid[double] *= 2
        mid[halve] = (lo[halve] + hi[halve]) / 2.0
    sigma = mid.astype(np.float32)
    # MIN_K_DIST_SCALE floors. numba's mean of a row: a float32 sum in order (a float32 cumsum's last value), divided
    # by the size in float64, returned as float32. The mean of all distances (rows without a non-zero distance) is a
    # parallel reduction there, its order set by the thread count; it cannot change a membership (all such rows'
    # are 1), so a float64 mean does.
    row_mean = (np.cumsum(d, axis=1, dtype=np.float32)[:, -1] / np.float64(k)).astype(np.float32).astype(np.float64)
    all_mean = float(np.float32(d.mean(dtype=np.float64)))
    floor = 1e-3 * np.where(rho > 0, row_mean, all_mean)
    sigma = np.where(sigma < floor, floor.astype(np.float32), sigma).astype(np.float32)
    return sigma, rho


def fuzzy_simplicial_set(knn_indices: np.ndarray, knn_dists: np.ndarray, *, n_obs: int,
                         n_neighbors: int) -> sp.csr_matrix:
    """umap-learn's `fuzzy_simplicial_set` on a precomputed kNN graph (scanpy's `method='umap'` connectivities:
    local_connectivity 1, set_op_mix_ratio 1), vectorised: membership exp(-(d - rho)/sigma) of each neighbour
    (1 within rho, 0 for the cell itself), then the fuzzy union A + Aᵀ - A∘Aᵀ, as float32 CSR."""
    d = np.ascontiguousarray(knn_dists, dtype=np.float32)
    idx = np.asarray(knn_indices)
    n, k = idx.shape
    sigma, rho = smooth_knn_dist(d, n_neighbors)
    above = d - rho[:, None]  # float32 throughout, as umap
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vals = np.exp(-(above / sigma[:, None]))  # float32: within an ulp of umap's (libm's expf)
    vals[(above <= 0) | (sigma[:, None] == 0)] = 1
    rows = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], (n, k))
    vals[idx == rows] = 0
    missing = idx == -1  # an incomplete approximate search: umap leaves (0, 0, 0), dropped below
    vals[missing] = 0
    result = sp.coo_matrix((vals.ravel(), (np.where(missing, 0, rows).ravel(),
                                           np.where(missing, 0, idx).astype(np.int32).ravel())),
                           shape=(n_obs, n_obs))
    result.eliminate_zeros()
    transpose = result.transpose()
    prod = result.multiply(transpose)
    result = 1.0 * (result + transpose - prod) + 0.0 * prod
    result.eliminate_zeros()
    return sp.csr_matrix(result.tocsr())


def umap_init(pcs: np.ndarray) -> str | np.ndarray:
    """UMAP's start: spectral up to the exact-kNN limit; beyond, the first two PCs (scaled as umap-learn
    scales its own PCA start). Spectral layout keeps √n Lanczos vectors of n cells (8 GB and most of
    the clustering time at a million cells)."""
    if len(pcs) <= EXACT_KNN_MAX_CELLS:
        return "spectral"
    start = np.asarray(pcs[:, :2], dtype=np.float32)
    return start * (10.0 / max(float(np.abs(start).max()), 1e-12))
