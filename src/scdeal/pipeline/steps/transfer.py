"""Step: transfer the bulk model to one sample's cells and predict every cell (no labels used)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import get_args

import anndata as ad
import pandas as pd

from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.device import select_device
from ...model.training import load_checkpoint
from ...model.transfer import (
    TransferConfig,
    TransferResult,
    threshold_for,
    transfer_and_predict,
)
from ...tl.baseline import BaselineKind, baseline_predictions
from ...tl.predictions import (
    annotate,
    compare_with_baseline,
    predictions_table,
    sensitive_fraction_interval,
)
from ...tl.trust import trust_diagnostic
from ..flags import config_from_args
from ..provenance import provenance
from ..report import transfer_report_files
from .common import run_step, step_parser

__all__ = ["NAME", "body", "build_parser", "main", "write_outputs"]

NAME = "transfer"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs and the baseline, then one per field of TransferConfig."""
    p = step_parser("scdeal_transfer.py", __doc__, TransferConfig, device=True)
    p.add_argument("--cells", required=True, help="<sample>.clustered.h5ad from the cluster step")
    p.add_argument("--bulk", required=True, help="bulk.h5ad of the drug (bulk_prepare step)")
    p.add_argument("--model", required=True, help="bulk_model.pt of the drug (bulk_pretrain step)")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    p.add_argument("--baseline", default="logistic", choices=get_args(BaselineKind),
                   help="simple model trained on the same bulk lines and genes and predicted beside scdeal, "
                        "so the report shows whether deep transfer helped (none: skip)")
    return p


def body(args: argparse.Namespace) -> None:
    """Transfer, call, diagnose and compare with the baseline; write the predictions and the cell model."""
    cfg = config_from_args(TransferConfig, args)
    model = load_checkpoint(args.model)
    cells, bulk = ad.read_h5ad(args.cells), ad.read_h5ad(args.bulk)
    result = transfer_and_predict(model, bulk, cells, cfg=cfg, device=select_device(args.device),
                                  what=f"sample '{args.sample}'")
    threshold = threshold_for(cfg.threshold_rule, result, cfg.threshold)
    baseline = baseline_predictions(args.baseline, bulk, cells, genes=result.genes, seed=args.seed)
    trust = trust_diagnostic(result.member_probs, result.direct_prob, baseline.prob if baseline else None,
                             bulk_val_auroc=result.bulk_val_auroc, n_reset=result.n_reset)
    annotate(cells, result, threshold=threshold, verdict=trust["verdict"], baseline=baseline)
    meta = provenance(NAME, vars(args), {"cells": args.cells, "bulk": args.bulk, "model": args.model})
    cells.uns["scdeal_transfer"] = {"drug": args.drug, "threshold": threshold, "transfer_config": asdict(cfg),
                                    "n_genes_used": len(result.genes), "trust": trust, "created": meta["created"]}
    summary = {"sample": args.sample, "drug": args.drug, "n_cells": int(cells.n_obs),
               "n_genes_used": len(result.genes), "calibration": cfg.calibration,
               "threshold_rule": cfg.threshold_rule, "threshold": threshold,
               "n_clusters": int(cells.obs["cluster"].nunique()),
               **sensitive_fraction_interval(result.member_probs, threshold, cells.n_obs),
               "uncertain_fraction": float((cells.obs["predicted_label"] == "uncertain").mean()),
               "trust": trust, "members": result.members,
               "comparison": compare_with_baseline(model.metrics["test"]["auroc"], result.prob, baseline),
               "provenance": meta}
    write_outputs(Path(args.outdir), args, cells=cells, result=result, summary=summary)


def write_outputs(out: Path, args: argparse.Namespace, *, cells: ad.AnnData, result: TransferResult,
                  summary: dict) -> None:
    """predictions.tsv, the training history, cell_model.pt, the summary, the annotated sample and the
    report files."""
    write_tsv(out / "predictions.tsv", predictions_table(cells))
    history = pd.DataFrame(result.history)
    write_tsv(out / "transfer_history.tsv", history)
    result.cell_model.save(out / "cell_model.pt", {"transfer_config": cells.uns["scdeal_transfer"]["transfer_config"],
                                                   "bulk_model": args.model})
    write_json(out / "transfer_summary.json", summary)
    write_h5ad(out / f"{args.sample}_{args.drug}.h5ad", cells)
    transfer_report_files(out, args.sample, args.drug, cells=cells, history=history, summary=summary)


def main(argv: list[str] | None = None) -> int:
    """Run the step with `argv` (default: the command line); the exit status."""
    return run_step(NAME, build_parser(), body, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
