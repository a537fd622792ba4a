"""Step: read one single-cell sample, QC, normalise, HVGs, PCA, Leiden clusters and UMAP."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from ...data.readers import read_single_cell
from ...data.singlecell import ClusterParams, preprocess_and_cluster
from ...data.species import check_declared_species, mouse_to_human
from ...data.writers import write_h5ad, write_json
from ..provenance import provenance
from ..report import cluster_report_files
from .common import run_step, step_parser

NAME = "cluster"


def build_parser() -> argparse.ArgumentParser:
    d = ClusterParams()
    p = step_parser("scdeal_cluster.py", __doc__)
    p.add_argument("--input", required=True, help=".h5ad, 10x .h5, 10x matrix directory or .csv/.tsv[.gz] matrix")
    p.add_argument("--sample", required=True, help="sample id (names the outputs)")
    p.add_argument("--species", default="human", choices=["human", "mouse"],
                   help="mouse genes are mapped to human one-to-one orthologs")
    p.add_argument("--orientation", default="auto", choices=["auto", "genes_x_cells", "cells_x_genes"],
                   help="layout of a text matrix (auto: detected from the header and barcodes)")
    p.add_argument("--min_genes", type=int, default=d.min_genes, help="QC: drop cells with fewer detected genes")
    p.add_argument("--min_cells", type=int, default=d.min_cells, help="QC: drop genes detected in fewer cells")
    p.add_argument("--max_pct_mito", type=float, default=d.max_pct_mito, help="QC: drop cells above this %% of mitochondrial counts")
    p.add_argument("--n_top_genes", type=int, default=d.n_top_genes, help="highly variable genes for PCA")
    p.add_argument("--n_pcs", type=int, default=d.n_pcs, help="principal components")
    p.add_argument("--n_neighbors", type=int, default=d.n_neighbors, help="neighbours in the kNN graph")
    p.add_argument("--resolution", type=float, default=d.resolution, help="Leiden resolution")
    return p


def body(args: argparse.Namespace) -> None:
    adata = read_single_cell(args.input, args.orientation)
    check_declared_species(adata, args.species, f"sample '{args.sample}' ({args.input})")
    species_report = {"species": args.species}
    if args.species == "mouse":
        adata, mapping = mouse_to_human(adata)
        species_report.update(mapping)
    params = ClusterParams(min_genes=args.min_genes, min_cells=args.min_cells, max_pct_mito=args.max_pct_mito,
                           n_top_genes=args.n_top_genes, n_pcs=args.n_pcs, n_neighbors=args.n_neighbors,
                           resolution=args.resolution, seed=args.seed)
    adata = preprocess_and_cluster(adata, params)
    adata.uns["scdeal_cluster"]["species"] = species_report
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"input": args.input})
    write_h5ad(out / f"{args.sample}.clustered.h5ad", adata)
    write_json(out / f"{args.sample}_cluster_summary.json",
               {"sample": args.sample, **adata.uns["scdeal_cluster"], "params": asdict(params), "provenance": meta})
    cluster_report_files(out, args.sample, adata)


def main(argv: list[str] | None = None) -> int:
    return run_step(NAME, build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
