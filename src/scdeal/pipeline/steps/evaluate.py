"""Step: compare predictions with ground-truth labels (only for evaluation; never used to predict)."""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data.writers import write_json, write_tsv
from ...tl.evaluate import confusion, evaluate_cells
from ..provenance import provenance
from ..report import evaluation_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "evaluate"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: the annotated sample, its label column and names (it has no settings)."""
    p = step_parser("scdeal_evaluate.py", __doc__)
    p.add_argument("--adata", required=True, help="annotated <sample>_<drug>.h5ad from the transfer step")
    p.add_argument("--label_key", required=True, help="obs column with sensitive/resistant ground truth")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    return p


def body(args: argparse.Namespace) -> None:
    """Score the calls and probabilities against the labels; write metrics, confusion and report files."""
    obs = ad.read_h5ad(args.adata, backed="r").obs
    metrics = evaluate_cells(obs, args.label_key)
    out = Path(args.outdir)
    write_tsv(out / "metrics.tsv", pd.DataFrame([{"sample": args.sample, "drug": args.drug, **metrics}]))
    table = confusion(obs, args.label_key)
    write_tsv(out / "confusion.tsv", table, index=True)
    write_json(out / "evaluation.json", {"sample": args.sample, "drug": args.drug, "metrics": metrics,
                                         "provenance": provenance(NAME, vars(args), {"adata": args.adata})})
    evaluation_report_files(out, args.sample, args.drug, metrics=metrics, table=table)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
