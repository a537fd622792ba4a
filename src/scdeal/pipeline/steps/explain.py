"""Step: integrated-gradient signature genes of one (sample, drug), compared with differential expression."""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad

from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.cell_model import CellModel
from ...tl.api import explain
from ...tl.explain import ExplainConfig
from ..flags import config_from_args
from ..provenance import provenance
from ..report import explain_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "explain"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of ExplainConfig."""
    p = step_parser("scdeal_explain.py", __doc__, ExplainConfig, device=True)
    p.add_argument("--adata", required=True, help="annotated <sample>_<drug>.h5ad from the transfer step")
    p.add_argument("--cell_model", required=True, help="cell_model.pt from the transfer step")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    return p


def body(args: argparse.Namespace) -> None:
    """Attribute the reported probability to genes; write signatures, attributions, summary and report files."""
    cfg = config_from_args(ExplainConfig, args)
    explanation = explain(ad.read_h5ad(args.adata), CellModel.load(args.cell_model), config=cfg, device=args.device)
    out = Path(args.outdir)
    write_tsv(out / "signature_genes.tsv", explanation.signature)
    write_tsv(out / "cluster_signatures.tsv", explanation.cluster_signatures)
    write_h5ad(out / "attributions_top_genes.h5ad", explanation.attributions)
    summary = {"sample": args.sample, "drug": args.drug, "attributed": "prob_sensitive (calibrated ensemble mean)",
               "baseline": "sample mean (zero in model space)", "n_steps": cfg.ig_steps,
               "mean_abs_delta": explanation.mean_abs_delta, "max_abs_delta": explanation.max_abs_delta,
               "de_overlap": explanation.de_overlap,
               "provenance": provenance(NAME, vars(args), {"adata": args.adata, "cell_model": args.cell_model})}
    write_json(out / "explain_summary.json", summary)
    explain_report_files(out, args.sample, args.drug, signature=explanation.signature,
                         attributions=explanation.attributions, summary=summary)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
