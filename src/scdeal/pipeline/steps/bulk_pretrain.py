"""Step: pretrain the bulk autoencoder and response predictor for one drug; save a checkpoint."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data.writers import write_json, write_tsv
from ...model.device import select_device
from ...model.networks import ENCODER_KINDS
from ...model.training import BulkConfig, pretrain_bulk, save_checkpoint
from ..provenance import provenance
from ..report import bulk_report_files
from .common import run_step, step_parser

NAME = "bulk_pretrain"


def build_parser() -> argparse.ArgumentParser:
    d = BulkConfig()
    p = step_parser("scdeal_bulk_pretrain.py", __doc__, device=True)
    p.add_argument("--bulk", required=True, help="bulk.h5ad written by the bulk_prepare step")
    p.add_argument("--drug", required=True, help="drug name (recorded in the checkpoint and report)")
    p.add_argument("--encoder", default=d.encoder, choices=ENCODER_KINDS, help="ae, dae (denoising) or vae")
    p.add_argument("--latent_dim", type=int, default=d.latent, help="bottleneck size")
    p.add_argument("--hidden_dims", default=",".join(map(str, d.hidden)), help="encoder hidden layer sizes")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout in every hidden layer")
    p.add_argument("--bulk_lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--bulk_epochs", type=int, default=d.ae_epochs, help="max epochs per stage (early stopping)")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience on validation loss")
    p.add_argument("--imbalance", default=d.imbalance, choices=["weight", "upsample", "smote", "none"],
                   help="class imbalance handling, fit on training lines only")
    p.add_argument("--w_response", type=float, default=d.w_response,
                   help="weight of the auxiliary regression of the continuous response (0: off)")
    return p


def body(args: argparse.Namespace) -> None:
    cfg = BulkConfig(encoder=args.encoder, latent=args.latent_dim, dropout=args.dropout, lr=args.bulk_lr,
                     hidden=tuple(int(h) for h in args.hidden_dims.split(",")), ae_epochs=args.bulk_epochs,
                     predictor_epochs=args.bulk_epochs, patience=args.patience, imbalance=args.imbalance, w_response=args.w_response,
                     seed=args.seed)
    bulk = ad.read_h5ad(args.bulk)
    model = pretrain_bulk(bulk, cfg, select_device(args.device), args.drug)
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"bulk": args.bulk})
    save_checkpoint(model, out / "bulk_model.pt", meta)
    write_tsv(out / "bulk_history.tsv", pd.DataFrame(model.history))
    write_json(out / "bulk_metrics.json", {"drug": args.drug, "metrics": model.metrics,
                                           "sensitive_fraction_train": model.sensitive_fraction,
                                           "n_genes": len(model.genes), "provenance": meta})
    bulk_report_files(out, args.drug, bulk, model)


def main(argv: list[str] | None = None) -> int:
    return run_step(NAME, build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
