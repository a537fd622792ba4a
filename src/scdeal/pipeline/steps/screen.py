"""Step: screen one sample: every drug's efficacy (predicted GDSC AUC) per cluster and for the sample, drugs ranked
by it, beside one transfer of the multi-task bulk model calling every cell for every drug (no labels used)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data import keys
from ...data.bulkdata import BulkData
from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.transfer import TransferConfig
from ...tl.api import screen
from ...tl.screen import ScreenConfig, probability_table
from ..flags import config_from_args
from ..provenance import provenance
from ..report import screen_report_files
from .common import BULK_MODEL_SETTINGS, add_bulk_model_flags, bulk_model_args, run_step, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "screen"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of TransferConfig and ScreenConfig."""
    p = step_parser("scdeal_screen.py", __doc__, TransferConfig, ScreenConfig, BULK_MODEL_SETTINGS, device=True)
    p.add_argument("--cells", required=True, help="<sample>.clustered.h5ad from the cluster step")
    p.add_argument("--bulk", required=True, help="screen_bulk.h5ad (screen_prepare step; with GDSC AUC for the efficacy)")
    add_bulk_model_flags(p, "screen_model.pt (screen_pretrain step)")
    p.add_argument("--sample", required=True, help="sample id")
    return p


def body(args: argparse.Namespace) -> None:
    """Predict every drug's efficacy, transfer once, rank the drugs; write the matrices, rankings, summary and report
    files."""
    screen_cfg = config_from_args(ScreenConfig, args)
    cells = ad.read_h5ad(args.cells)
    outcome = screen(cells, BulkData.from_anndata(ad.read_h5ad(args.bulk)), **bulk_model_args(args),
                     config=config_from_args(TransferConfig, args), screen_config=screen_cfg, device=args.device,
                     what=f"sample '{args.sample}'")
    result, ranking = outcome.result, outcome.ranking
    meta = provenance(NAME, vars(args), {"cells": args.cells, "bulk": args.bulk, "model": args.model})
    cells.uns[keys.SCREEN]["created"] = meta["created"]
    summary = {"sample": args.sample, "n_cells": int(cells.n_obs), "n_drugs": len(result.drugs),
               "n_ranked": int(ranking["ranked"].sum()), "n_genes_used": len(result.genes),
               "n_clusters": int(cells.obs[keys.CLUSTER].nunique()), "efficacy_alpha": outcome.efficacy.alpha,
               "auc_threshold": screen_cfg.auc_threshold, "absolute_level": outcome.efficacy.likeness.summary(),
               "top_drugs": ranking.loc[ranking["ranked"], "drug"].head(screen_cfg.top_drugs).tolist(),
               "provenance": meta}
    out = Path(args.outdir)
    write_tsv(out / "screen_probabilities.tsv", probability_table(cells, result.prob, result.drugs))
    write_tsv(out / "screen_auc.tsv", probability_table(cells, outcome.efficacy.cell_auc, result.drugs))
    write_tsv(out / "screen_ranking.tsv", ranking)
    write_tsv(out / "screen_cluster_ranking.tsv", outcome.cluster_ranking)
    write_tsv(out / "screen_history.tsv", pd.DataFrame(result.history))
    write_json(out / "screen_summary.json", summary)
    write_h5ad(out / f"{args.sample}_screen.h5ad", cells)
    screen_report_files(out, args.sample, cluster_ranking=outcome.cluster_ranking, sample_ranking=ranking,
                        top_drugs=screen_cfg.top_drugs, likeness=outcome.efficacy.likeness)


def main(argv: list[str] | None = None) -> int:
    """Run the step with `argv` (default: the command line); the exit status."""
    return run_step(NAME, build_parser(), body, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
