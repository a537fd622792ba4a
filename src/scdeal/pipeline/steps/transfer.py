"""Step: transfer the bulk model to one sample's cells and predict every cell (no labels used)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from ...data.writers import atomic_path, write_h5ad, write_json, write_tsv
from ...model.device import select_device
from ...model.training import load_checkpoint
from ...model.transfer import (
    ANCHOR_LEVELS,
    CALIBRATIONS,
    MEMBER_BULK,
    MMD_CLASS_MIX,
    THRESHOLD_RULES,
    TransferConfig,
    call_labels,
    threshold_for,
    transfer_and_predict,
)
from ...tl.baseline import BASELINES, baseline_predictions
from ...tl.trust import trust_diagnostic
from ..provenance import provenance
from ..report import transfer_report_files
from .common import run_step, step_parser

NAME = "transfer"
CALLS = ("sensitive", "resistant", "uncertain")


def build_parser() -> argparse.ArgumentParser:
    d = TransferConfig()
    p = step_parser("scdeal_transfer.py", __doc__, device=True)
    p.add_argument("--cells", required=True, help="<sample>.clustered.h5ad from the cluster step")
    p.add_argument("--bulk", required=True, help="bulk.h5ad of the drug (bulk_prepare step)")
    p.add_argument("--model", required=True, help="bulk_model.pt of the drug (bulk_pretrain step)")
    p.add_argument("--sample", required=True, help="sample id")
    p.add_argument("--drug", required=True, help="drug name")
    p.add_argument("--epochs", type=int, default=d.epochs, help="transfer epochs (fixed; no cell labels are used)")
    p.add_argument("--batch_size", type=int, default=d.batch_size, help="cells (and bulk lines) per step")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate of the transfer")
    p.add_argument("--w_bulk", type=float, default=d.w_bulk, help="weight of the bulk response loss")
    p.add_argument("--w_mmd", type=float, default=d.w_mmd, help="weight of the MMD alignment loss")
    p.add_argument("--w_cluster", type=float, default=d.w_cluster, help="weight of the cluster regularisation")
    p.add_argument("--w_anchor", type=float, default=d.w_anchor,
                   help="weight of the consistency with each member's source model (keeps the direction of the call)")
    p.add_argument("--anchor_level", default=d.anchor_level, choices=ANCHOR_LEVELS,
                   help="cells: the source model fixes every cell's rank, which the transfer may refine; clusters: it "
                        "fixes which clusters are sensitive and leaves the order within a cluster free")
    p.add_argument("--mmd_class_mix", default=d.mmd_class_mix, choices=MMD_CLASS_MIX,
                   help="bulk: bulk lines enter the MMD as they come; estimated: in the cells' sensitive/resistant "
                        "mix estimated by EM from the source model (alignment under label shift)")
    p.add_argument("--member_bulk", default=d.member_bulk, choices=MEMBER_BULK,
                   help="bootstrap: each member learns from its own bootstrap sample of the bulk training lines, so "
                        "the spread shows how firmly the bulk evidence fixes the call; all: every member sees all lines")
    p.add_argument("--source_epochs", type=int, default=d.source_epochs,
                   help="epochs (early-stopped on bulk validation lines) refitting the bulk model on the sample's genes")
    p.add_argument("--no_pretrain", action="store_true", help="ablation: start from random weights")
    p.add_argument("--n_ensemble", type=int, default=d.n_ensemble,
                   help="members with consecutive seeds; their spread is the uncertainty")
    p.add_argument("--calibration", default=d.calibration, choices=CALIBRATIONS,
                   help="platt: probabilities calibrated on held-out bulk lines; none: the network's raw output")
    p.add_argument("--threshold_rule", default=d.threshold_rule, choices=THRESHOLD_RULES,
                   help="otsu: the split of the probabilities into two groups; fixed: prob ≥ --threshold; "
                        "bulk_prevalence: the top fraction equal to the bulk sensitive rate. Cells whose ensemble "
                        "spread reaches across the threshold are called uncertain")
    p.add_argument("--threshold", type=float, default=d.threshold, help="probability threshold of the fixed rule")
    p.add_argument("--max_cells_per_epoch", type=int, default=d.max_cells_per_epoch,
                   help="cells drawn per epoch at most (training cost stops growing with sample size)")
    p.add_argument("--min_gene_overlap", type=int, default=d.min_gene_overlap,
                   help="fewest bulk-model genes the sample must have")
    p.add_argument("--baseline", default="logistic", choices=BASELINES,
                   help="simple model trained on the same bulk lines and genes and predicted beside scdeal, "
                        "so the report shows whether deep transfer helped (none: skip)")
    return p


def body(args: argparse.Namespace) -> None:
    cfg = TransferConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, w_bulk=args.w_bulk,
                         w_mmd=args.w_mmd, w_cluster=args.w_cluster, w_anchor=args.w_anchor,
                         anchor_level=args.anchor_level, mmd_class_mix=args.mmd_class_mix,
                         member_bulk=args.member_bulk, source_epochs=args.source_epochs,
                         pretrained=not args.no_pretrain,
                         n_ensemble=args.n_ensemble, calibration=args.calibration,
                         threshold_rule=args.threshold_rule, threshold=args.threshold,
                         min_gene_overlap=args.min_gene_overlap,
                         max_cells_per_epoch=args.max_cells_per_epoch, seed=args.seed)
    model = load_checkpoint(args.model)
    cells, bulk = ad.read_h5ad(args.cells), ad.read_h5ad(args.bulk)
    result = transfer_and_predict(model, bulk, cells, cfg, select_device(args.device), what=f"sample '{args.sample}'")
    threshold = threshold_for(cfg.threshold_rule, result, cfg.threshold)
    baseline = baseline_predictions(args.baseline, bulk, cells, result.genes, args.seed)
    trust = trust_diagnostic(result.member_probs, result.direct_prob, baseline.prob if baseline else None,
                             result.bulk_val_auroc, result.n_reset)
    annotate(cells, result, threshold, trust["verdict"])
    if baseline is not None:
        cells.obs["prob_sensitive_baseline"] = baseline.prob
    meta = provenance(NAME, vars(args), {"cells": args.cells, "bulk": args.bulk, "model": args.model})
    cells.uns["scdeal_transfer"] = {"drug": args.drug, "threshold": threshold, "config": asdict(cfg),
                                    "n_genes_used": len(result.genes), "trust": trust, "created": meta["created"]}
    write_outputs(Path(args.outdir), args, cells, result, threshold, meta, comparison(model, result, baseline), trust)


def annotate(cells: ad.AnnData, result, threshold: float, verdict: str) -> None:
    """Sets obs `prob_sensitive`, `prob_sensitive_sd`, `prob_sensitive_direct`, `predicted_label`
    (sensitive / resistant / uncertain), `trust` (the run's verdict) and obsm `X_scdeal`."""
    cells.obs["prob_sensitive"] = result.prob.astype(np.float32)
    cells.obs["prob_sensitive_sd"] = result.prob_sd.astype(np.float32)
    cells.obs["prob_sensitive_direct"] = result.direct_prob.astype(np.float32)
    cells.obs["predicted_label"] = pd.Categorical(call_labels(result.prob, result.prob_sd, threshold),
                                                  categories=list(CALLS))
    cells.obs["trust"] = pd.Categorical([verdict] * cells.n_obs)
    cells.obsm["X_scdeal"] = result.embedding.astype(np.float32)


def comparison(model, result, baseline) -> dict:
    """What a user needs to judge, without cell labels, whether deep transfer helped: both models on
    the same held-out bulk lines, and how far their per-cell rankings agree."""
    out = {"scdeal_bulk_test_auroc": float(model.metrics["test"]["auroc"])}
    if baseline is not None:
        rho = spearmanr(result.prob, baseline.prob).statistic if np.ptp(baseline.prob) > 0 else float("nan")
        out |= {"baseline": baseline.kind, "baseline_bulk_test_auroc": baseline.bulk_test_auroc,
                "spearman_scdeal_vs_baseline": float(rho)}
    return out


def sensitive_fraction_interval(member_probs: np.ndarray, threshold: float, n_cells: int) -> dict:
    """Estimated fraction of sensitive cells: mean probability, with a 95 % interval from the ensemble
    spread and the binomial sampling of cells."""
    per_member = member_probs.mean(1)
    mean = float(per_member.mean())
    sd = float(np.sqrt(per_member.var() + mean * (1 - mean) / max(n_cells, 1)))
    labelled = float((member_probs.mean(0) >= threshold).mean())
    return {"sensitive_fraction_mean_prob": mean, "sensitive_fraction_ci95": [max(0.0, mean - 1.96 * sd),
                                                                            min(1.0, mean + 1.96 * sd)],
            "sensitive_fraction_labelled": labelled}


def write_outputs(out: Path, args, cells: ad.AnnData, result, threshold: float, meta: dict, compare: dict,
                  trust: dict) -> None:
    columns = ["prob_sensitive", "predicted_label", "cluster", "prob_sensitive_sd", "prob_sensitive_direct",
               "prob_sensitive_baseline", "trust"]
    text = ("predicted_label", "cluster", "trust")
    predictions = pd.DataFrame({"cell_id": cells.obs_names,
                                **{c: cells.obs[c].astype(str).to_numpy() if c in text
                                   else cells.obs[c].to_numpy() for c in columns if c in cells.obs}})
    write_tsv(out / "predictions.tsv", predictions)
    history = pd.DataFrame(result.history)
    write_tsv(out / "transfer_history.tsv", history)
    with atomic_path(out / "cell_model.pt", suffix=".pt") as tmp:
        torch.save({**result.cell_model, "config": cells.uns["scdeal_transfer"]["config"],
                    "bulk_model": args.model}, tmp)
    summary = {"sample": args.sample, "drug": args.drug, "n_cells": int(cells.n_obs), "n_genes_used": len(result.genes),
               "calibration": args.calibration, "threshold_rule": args.threshold_rule, "threshold": threshold,
               "n_clusters": int(cells.obs["cluster"].nunique()),
               **sensitive_fraction_interval(result.member_probs, threshold, cells.n_obs),
               "uncertain_fraction": float((cells.obs["predicted_label"] == "uncertain").mean()),
               "trust": trust, "members": result.members, "comparison": compare, "provenance": meta}
    write_json(out / "transfer_summary.json", summary)
    write_h5ad(out / f"{args.sample}_{args.drug}.h5ad", cells)
    transfer_report_files(out, args.sample, args.drug, cells, history, summary)


def main(argv: list[str] | None = None) -> int:
    return run_step(NAME, build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
