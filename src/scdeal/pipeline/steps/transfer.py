"""Step: transfer the bulk model to one sample's cells and predict every cell (no labels used)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

import anndata as ad
import pandas as pd

from ...data import keys
from ...data.bulkdata import BulkData
from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.transfer import TransferConfig
from ...tl.api import Prediction, predict
from ...tl.baseline import BaselineKind
from ...tl.predictions import predictions_table
from ..flags import config_from_args
from ..provenance import provenance
from ..report import transfer_report_files
from .common import BULK_MODEL_SETTINGS, add_bulk_model_flags, bulk_model_args, run_step, step_parser

__all__ = ["NAME", "body", "build_parser", "main", "write_outputs"]

NAME = "transfer"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs and the baseline, then one per field of TransferConfig and, prefixed
    `bulk_`, of BulkConfig (the bulk model each member fits)."""
    p = step_parser("scdeal_transfer.py", __doc__, TransferConfig, BULK_MODEL_SETTINGS, device=True)
    p.add_argument("--cells", required=True, help="<sample>.clustered.h5ad from the cluster step")
    p.add_argument("--bulk", required=True, help="bulk.h5ad of the drug (bulk_prepare step)")
    add_bulk_model_flags(p, "bulk_model.pt of the drug (bulk_pretrain step)")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    p.add_argument("--baseline", default="logistic", choices=get_args(BaselineKind),
                   help="simple model trained on the same bulk lines and genes and predicted beside scdeal, "
                        "so the report shows whether deep transfer helped (none: skip)")
    return p


def body(args: argparse.Namespace) -> None:
    """Transfer, call, diagnose and compare with the baseline; write the predictions and the cell model."""
    cells = ad.read_h5ad(args.cells)
    prediction = predict(cells, BulkData.from_anndata(ad.read_h5ad(args.bulk)), drug=args.drug,
                         **bulk_model_args(args), config=config_from_args(TransferConfig, args),
                         baseline=args.baseline, device=args.device, what=f"sample '{args.sample}'")
    meta = provenance(NAME, vars(args), {"cells": args.cells, "bulk": args.bulk, "model": args.model})
    cells.uns[keys.TRANSFER]["created"] = meta["created"]
    summary = {"sample": args.sample, **prediction.summary, "provenance": meta}
    write_outputs(Path(args.outdir), args, cells=cells, prediction=prediction, summary=summary)


def write_outputs(out: Path, args: argparse.Namespace, *, cells: ad.AnnData, prediction: Prediction,
                  summary: dict) -> None:
    """predictions.tsv, the training history, cell_model.pt, the summary, the annotated sample and the
    report files."""
    write_tsv(out / "predictions.tsv", predictions_table(cells))
    history = pd.DataFrame(prediction.result.history)
    write_tsv(out / "transfer_history.tsv", history)
    prediction.result.cell_model.save(out / "cell_model.pt", {
        "transfer_config": cells.uns[keys.TRANSFER]["transfer_config"], "bulk_model": args.model})
    write_json(out / "transfer_summary.json", summary)
    write_h5ad(out / f"{args.sample}_{args.drug}.h5ad", cells)
    transfer_report_files(out, args.sample, args.drug, cells=cells, history=history, summary=summary)


def main(argv: list[str] | None = None) -> int:
    """Run the step with `argv` (default: the command line); the exit status."""
    return run_step(NAME, build_parser(), body, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
