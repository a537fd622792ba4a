"""Step: pretrain the multi-task bulk model of a screen (one encoder, one response output per drug)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data.screen import SCREEN_KEY
from ...data.writers import write_json, write_tsv
from ...model.device import select_device
from ...model.screen import pretrain_screen, save_screen_model
from ...model.training import BulkConfig
from ..flags import config_from_args
from ..provenance import provenance
from ..report import screen_bulk_report_files
from .common import run_step, step_parser

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
    model = pretrain_screen(bulk, config_from_args(BulkConfig, args), select_device(args.device))
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"bulk": args.bulk})
    save_screen_model(model, out / "screen_model.pt", meta)
    write_tsv(out / "screen_history.tsv", pd.DataFrame(model.history))
    metrics = pd.DataFrame(model.metrics).assign(response_kind=bulk.uns[SCREEN_KEY]["response_kind"])
    write_tsv(out / "screen_bulk_metrics.tsv", metrics)
    write_json(out / "screen_bulk_metrics.json", {"n_drugs": len(model.drugs), "n_genes": len(model.genes),
                                                  "bulk_config": asdict(model.config), "provenance": meta})
    screen_bulk_report_files(out, metrics)


def main(argv: list[str] | None = None) -> int:
    """Run the step with `argv` (default: the command line); the exit status."""
    return run_step(NAME, build_parser(), body, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
