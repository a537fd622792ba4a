"""Step: pretrain the bulk autoencoder and response predictor for one drug; save a checkpoint. The pipeline runs it
only with --member_init pretrained, the one setting whose transfer starts from its weights."""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data.bulkdata import BulkData
from ...data.writers import write_json, write_tsv
from ...model.training import BulkConfig, save_checkpoint
from ...tl.api import pretrain
from ..flags import config_from_args
from ..provenance import provenance
from ..report import bulk_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "bulk_pretrain"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of BulkConfig."""
    p = step_parser("scdeal_bulk_pretrain.py", __doc__, BulkConfig, device=True)
    p.add_argument("--bulk", required=True, help="bulk.h5ad written by the bulk_prepare step")
    p.add_argument("--drug", required=True, help="drug name (recorded in the checkpoint and report)")
    return p


def body(args: argparse.Namespace) -> None:
    """Pretrain, then write bulk_model.pt, the training history, the metrics and the report files."""
    bulk = ad.read_h5ad(args.bulk)
    model = pretrain(BulkData.from_anndata(bulk), config_from_args(BulkConfig, args), device=args.device)
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"bulk": args.bulk})
    save_checkpoint(model, out / "bulk_model.pt", meta)
    write_tsv(out / "bulk_history.tsv", pd.DataFrame(model.history))
    metrics = model.metrics[0]
    write_json(out / "bulk_metrics.json", {"drug": args.drug, "metrics": {s: metrics[s] for s in ("val", "test")},
                                           "train_prevalence": metrics["train_prevalence"],
                                           "n_genes": len(model.genes), "provenance": meta})
    bulk_report_files(out, args.drug, model=model)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
