"""Step: read one single-cell sample, QC, normalise, HVGs, PCA, Leiden clusters and UMAP."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import get_args

from ...data import keys
from ...data.readers import Orientation, read_single_cell
from ...data.singlecell import ClusterConfig, preprocess_and_cluster
from ...data.species import Species, mouse_to_human, species_mismatch
from ...data.writers import write_h5ad, write_json
from ...errors import InputError
from ..flags import config_from_args
from ..provenance import provenance
from ..report import cluster_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "cluster"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: the sample and how to read it, then one per field of ClusterConfig."""
    p = step_parser("scdeal_cluster.py", __doc__, ClusterConfig)
    p.add_argument("--input", required=True, help=".h5ad, 10x .h5, 10x matrix directory or .csv/.tsv[.gz] matrix")
    p.add_argument("--sample", required=True, help="sample id (names the outputs)")
    p.add_argument("--species", default="human", choices=get_args(Species),
                   help="mouse genes are mapped to human one-to-one orthologs")
    p.add_argument("--orientation", default="auto", choices=get_args(Orientation),
                   help="layout of a text matrix (auto: detected from the header and barcodes)")
    return p


def body(args: argparse.Namespace) -> None:
    """Read, check the species (map mouse genes), cluster, write the clustered sample and its summary."""
    adata = read_single_cell(args.input, args.orientation)
    if problem := species_mismatch(adata.var_names, args.species, f"sample '{args.sample}' ({args.input})"):
        raise InputError(problem)
    species_report = {"species": args.species}
    if args.species == "mouse":
        adata, mapping = mouse_to_human(adata)
        species_report.update(mapping)
    params = config_from_args(ClusterConfig, args)
    adata = preprocess_and_cluster(adata, params)
    adata.uns[keys.CLUSTER_INFO]["species"] = species_report
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"input": args.input})
    write_h5ad(out / f"{args.sample}.clustered.h5ad", adata)
    write_json(out / f"{args.sample}_cluster_summary.json",
               {"sample": args.sample, **adata.uns[keys.CLUSTER_INFO], "params": asdict(params), "provenance": meta})
    cluster_report_files(out, args.sample, adata)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
