"""Step: pretrain the bulk model of a screen (one encoder, one linear response output per drug)."""
from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ...data import keys
from ...data.bulkdata import BulkData
from ...data.writers import write_json, write_tsv
from ...model.training import BulkConfig, save_checkpoint
from ...tl.api import pretrain
from ...tl.screen import SCREEN_HEADS
from ..flags import config_from_args
from ..provenance import provenance
from ..report import screen_bulk_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "screen_pretrain"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its input, then one per field of BulkConfig."""
    p = step_parser("scdeal_screen_pretrain.py", __doc__, BulkConfig, device=True)
    p.add_argument("--bulk", required=True, help="screen_bulk.h5ad written by the screen_prepare step")
    return p


def body(args: argparse.Namespace) -> None:
    """Pretrain, then write screen_model.pt, the training history, per-drug metrics and the report file."""
    bulk = ad.read_h5ad(args.bulk)
    model = pretrain(BulkData.from_anndata(bulk), replace(config_from_args(BulkConfig, args),
                                                          predictor_hidden_dims=SCREEN_HEADS), device=args.device)
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"bulk": args.bulk})
    save_checkpoint(model, out / "screen_model.pt", meta)
    write_tsv(out / "screen_history.tsv", pd.DataFrame(model.history))
    metrics = pd.DataFrame([{**{k: m[k] for k in ("drug", "n_lines", "n_sensitive")},
                             "val_auroc": m["val"].get("auroc", np.nan), "test_auroc": m["test"].get("auroc", np.nan),
                             "test_spearman": m["test_spearman"]} for m in model.metrics])
    metrics = metrics.assign(response_kind=bulk.uns[keys.SCREEN]["response_kind"])
    write_tsv(out / "screen_bulk_metrics.tsv", metrics)
    write_json(out / "screen_bulk_metrics.json", {"n_drugs": len(model.drugs), "n_genes": len(model.genes),
                                                  "bulk_config": asdict(model.config), "provenance": meta})
    screen_bulk_report_files(out, metrics)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
