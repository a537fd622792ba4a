"""Step: integrated-gradient signature genes of one (sample, drug), compared with differential expression."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import torch

from ...data.features import CellFeatures
from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.device import select_device
from ...tl.explain import (
    cell_model_network,
    cluster_signatures,
    integrated_gradients,
    overlap_with_de,
    signature_genes,
)
from ..provenance import provenance
from ..report import explain_report_files
from .common import run_step, step_parser

NAME = "explain"


def build_parser() -> argparse.ArgumentParser:
    p = step_parser("scdeal_explain.py", __doc__, device=True)
    p.add_argument("--adata", required=True, help="annotated <sample>_<drug>.h5ad from the transfer step")
    p.add_argument("--cell_model", required=True, help="cell_model.pt from the transfer step")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    p.add_argument("--ig_steps", type=int, default=32, help="integrated-gradient steps (Riemann trapezoid)")
    p.add_argument("--ig_batch_size", type=int, default=256, help="cells per attribution batch (bounds memory)")
    p.add_argument("--top_genes", type=int, default=50, help="signature genes reported per direction")
    p.add_argument("--ig_max_cells", type=int, default=20000,
                   help="cells attributed at most (a random subset, the same fraction of every cluster, beyond it)")
    return p


def body(args: argparse.Namespace) -> None:
    adata = subsample_by_cluster(ad.read_h5ad(args.adata), args.ig_max_cells, args.seed)
    payload = torch.load(args.cell_model, map_location="cpu", weights_only=True)
    model = cell_model_network(payload)
    genes = payload["genes"]
    features = CellFeatures(adata.X, adata.var_names.get_indexer(genes))
    attr, delta, effect = integrated_gradients(model, features, select_device(args.device), args.ig_steps, args.ig_batch_size)
    signature = signature_genes(attr, effect, genes, args.top_genes)
    per_cluster = cluster_signatures(attr, genes, adata.obs["cluster"].astype(str))
    de_genes = differential_genes(adata, genes)
    overlap = overlap_with_de(signature, de_genes, len(genes), args.top_genes)
    out = Path(args.outdir)
    write_tsv(out / "signature_genes.tsv", signature)
    write_tsv(out / "cluster_signatures.tsv", per_cluster)
    top = signature["gene"].tolist()
    attributions = ad.AnnData(attr[:, [genes.index(g) for g in top]], obs=adata.obs[["cluster", "prob_sensitive", "predicted_label"]].copy(),
                              var=pd.DataFrame(index=top))
    attributions.obs["ig_delta"] = delta
    write_h5ad(out / "attributions_top_genes.h5ad", attributions)
    summary = {"sample": args.sample, "drug": args.drug, "baseline": "sample mean (zero in model space)",
               "n_steps": args.ig_steps, "mean_abs_delta": float(np.abs(delta).mean()),
               "max_abs_delta": float(np.abs(delta).max()), "de_overlap": overlap,
               "provenance": provenance(NAME, vars(args), {"adata": args.adata, "cell_model": args.cell_model})}
    write_json(out / "explain_summary.json", summary)
    explain_report_files(out, args.sample, args.drug, adata, signature, attributions, summary)


def subsample_by_cluster(adata: ad.AnnData, max_cells: int, seed: int) -> ad.AnnData:
    """At most `max_cells` cells, keeping each cluster's share (attribution cost grows with cells)."""
    if adata.n_obs <= max_cells:
        return adata
    rng = np.random.default_rng(seed)
    keep = []
    for idx in adata.obs.groupby("cluster", observed=True).indices.values():
        keep.extend(rng.choice(idx, max(1, round(len(idx) * max_cells / adata.n_obs)), replace=False))
    return adata[np.sort(keep)].copy()


def differential_genes(adata: ad.AnnData, genes: list[str]) -> list[str]:
    """Model genes ranked by Wilcoxon DE between predicted-sensitive and predicted-resistant cells."""
    sub = adata[:, [g for g in genes if g in adata.var_names]].copy()
    if sub.obs["predicted_label"].nunique() < 2:
        return []
    sc.tl.rank_genes_groups(sub, "predicted_label", groups=["sensitive"], reference="resistant", method="wilcoxon")
    ranked = pd.DataFrame(sub.uns["rank_genes_groups"]["names"])["sensitive"]
    scores = pd.DataFrame(sub.uns["rank_genes_groups"]["scores"])["sensitive"].abs()
    return ranked.iloc[np.argsort(-scores.to_numpy())].tolist()


def main(argv: list[str] | None = None) -> int:
    return run_step(NAME, build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
