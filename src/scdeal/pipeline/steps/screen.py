"""Step: screen one sample: one transfer of the multi-task bulk model, every drug predicted for every cell,
drugs ranked per cluster and for the sample (no labels used)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data.writers import write_h5ad, write_json, write_tsv
from ...model.device import select_device
from ...model.screen import load_screen_model, screen_transfer
from ...model.transfer import TransferConfig
from ...tl.screen import (
    ScreenConfig,
    annotate_screen,
    cluster_ranking,
    drug_trust,
    probability_table,
    sample_ranking,
)
from ..flags import config_from_args
from ..provenance import provenance
from ..report import screen_report_files
from .common import run_step, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "screen"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of TransferConfig and ScreenConfig."""
    p = step_parser("scdeal_screen.py", __doc__, TransferConfig, ScreenConfig, device=True)
    p.add_argument("--cells", required=True, help="<sample>.clustered.h5ad from the cluster step")
    p.add_argument("--bulk", required=True, help="screen_bulk.h5ad (screen_prepare step)")
    p.add_argument("--model", required=True, help="screen_model.pt (screen_pretrain step)")
    p.add_argument("--sample", required=True, help="sample id")
    return p


def body(args: argparse.Namespace) -> None:
    """Transfer once, predict every drug, rank the drugs; write the matrix, rankings, summary and report files."""
    cfg, screen_cfg = config_from_args(TransferConfig, args), config_from_args(ScreenConfig, args)
    model = load_screen_model(args.model)
    cells, bulk = ad.read_h5ad(args.cells), ad.read_h5ad(args.bulk)
    result = screen_transfer(model, bulk, cells, cfg=cfg, device=select_device(args.device),
                             what=f"sample '{args.sample}'")
    trust = drug_trust(result, screen_cfg)
    ranking = sample_ranking(result.member_probs, result.drugs, bulk_rate=result.bulk_rate, trust=trust,
                             config=screen_cfg)
    by_cluster = cluster_ranking(result.member_probs, result.drugs, bulk_rate=result.bulk_rate,
                                 clusters=cells.obs["cluster"], rankable=ranking.set_index("drug")["ranked"])
    annotate_screen(cells, result)
    meta = provenance(NAME, vars(args), {"cells": args.cells, "bulk": args.bulk, "model": args.model})
    cells.uns["scdeal_screen"] = {"drugs": result.drugs, "n_genes_used": len(result.genes),
                                  "transfer_config": asdict(cfg), "screen_config": asdict(screen_cfg),
                                  "created": meta["created"]}
    summary = {"sample": args.sample, "n_cells": int(cells.n_obs), "n_drugs": len(result.drugs),
               "n_ranked": int(ranking["ranked"].sum()), "n_genes_used": len(result.genes),
               "n_clusters": int(cells.obs["cluster"].nunique()),
               "top_drugs": ranking.loc[ranking["ranked"], "drug"].head(screen_cfg.top_drugs).tolist(),
               "provenance": meta}
    out = Path(args.outdir)
    write_tsv(out / "screen_probabilities.tsv", probability_table(cells, result))
    write_tsv(out / "screen_ranking.tsv", ranking)
    write_tsv(out / "screen_cluster_ranking.tsv", by_cluster)
    write_tsv(out / "screen_history.tsv", pd.DataFrame(result.history))
    write_json(out / "screen_summary.json", summary)
    write_h5ad(out / f"{args.sample}_screen.h5ad", cells)
    screen_report_files(out, args.sample, cluster_ranking=by_cluster, sample_ranking=ranking,
                        top_drugs=screen_cfg.top_drugs)


def main(argv: list[str] | None = None) -> int:
    """Run the step with `argv` (default: the command line); the exit status."""
    return run_step(NAME, build_parser(), body, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
