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
    sc.pp.neighbors(adata, n_neighbors=k, use_rep="X_pca", random_state=p.seed,
                    transformer=knn_transformer(adata.n_obs, k, p.seed))
    sc.tl.leiden(adata, resolution=p.resolution, key_added=CLUSTER, flavor="igraph", n_iterations=2,
                 directed=False, random_state=p.seed)
    sc.tl.umap(adata, random_state=p.seed, init_pos=umap_init(adata.obsm["X_pca"]))


def umap_init(pcs: np.ndarray) -> str | np.ndarray:
    """UMAP's start: spectral up to the exact-kNN limit; beyond, the first two PCs (scaled as umap-learn
    scales its own PCA start). Spectral layout keeps √n Lanczos vectors of n cells (8 GB and most of
    the clustering time at a million cells)."""
    if len(pcs) <= EXACT_KNN_MAX_CELLS:
        return "spectral"
    start = np.asarray(pcs[:, :2], dtype=np.float32)
    return start * (10.0 / max(float(np.abs(start).max()), 1e-12))
